public import CairnCore
import FeaturePipelineController
import ModelController
import ModelDeploymentController
import MonitorController
import TrainingScheduleController

/// The composition root's list of controllers: one per kind. `ControllerRegistry` refuses to
/// start without one for every kind.
public enum Controllers {
    public static let all: [any Controller] = [
        FeaturePipelineController(), TrainingScheduleController(), ModelController(),
        ModelDeploymentController(), MonitorController(),
    ]

    public static func registry() throws -> ControllerRegistry {
        do {
            return try ControllerRegistry(all)
        } catch {
            throw CairnExit(code: CairnExit.unreadable, message: "error: cannot start: \(error)")
        }
    }
}

public import CairnCore
import FeaturePipelineController
import ModelController
import ModelDeploymentController
public import MonitorController
import TrainingScheduleController

/// The composition root's list of controllers: one per kind. `ControllerRegistry` refuses to
/// start without one for every kind.
public enum Controllers {
    /// With `monitors`, Monitors are evaluated (the daemon, the demo); without, they say
    /// they are not evaluated here (`cairn reconcile --once` can receive no samples).
    public static func all(monitors: MonitorServices? = nil) -> [any Controller] {
        [FeaturePipelineController(), TrainingScheduleController(), ModelController(),
         ModelDeploymentController(), MonitorController(services: monitors)]
    }

    public static var all: [any Controller] { all(monitors: nil) }

    public static func registry(monitors: MonitorServices? = nil) throws -> ControllerRegistry {
        do {
            return try ControllerRegistry(all(monitors: monitors))
        } catch {
            throw CairnExit(code: CairnExit.unreadable, message: "error: cannot start: \(error)")
        }
    }
}

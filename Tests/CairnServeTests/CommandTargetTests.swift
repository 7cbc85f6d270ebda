@testable import CairnServe
import CairnCore
import CairnManifests
import CairnRun
import CairnTestSupport
import Foundation
import Testing

/// The scripts a repository would hold; each takes the "other system" (a directory standing
/// in for a cluster) as its argument.
private let scripts = [
    "deploy/apply.sh": """
        count=$(cat "$1/apply-count" 2>/dev/null || echo 0)
        echo $((count + 1)) > "$1/apply-count"
        env | sort > "$1/apply-env"
        printf '%s\\n' "$@" > "$1/apply-args"
        if [ "$CAIRN_MODEL_VERSION" = 1 ] && [ -f "$1/slow-v1" ]; then exec sleep 30; fi
        if [ -f "$1/fail-apply" ]; then echo "rolling out"; echo "cannot reach the cluster" >&2; exit 3; fi
        echo "$CAIRN_MODEL_VERSION" > "$1/served"
        """,
    "deploy/check.sh": """
        count=$(cat "$1/check-count" 2>/dev/null || echo 0)
        echo $((count + 1)) > "$1/check-count"
        [ "$(cat "$1/served" 2>/dev/null)" = "$CAIRN_MODEL_VERSION" ] || { echo "the cluster serves no $CAIRN_MODEL_NAME@$CAIRN_MODEL_VERSION" >&2; exit 1; }
        """,
    "deploy/remove.sh": """
        env | sort > "$1/remove-env"
        if [ -f "$1/fail-remove" ]; then echo "the cluster says no" >&2; exit 2; fi
        rm -f "$1/served"
        """,
    "deploy/slow.sh": "exec sleep 30\n",
]

@Suite struct CommandTargetTests {
    let fixture: TargetFixture
    let system: URL
    let commit = "c0ffee" + String(repeating: "0", count: 34)
    let time = TestTime()

    init() throws {
        fixture = try TargetFixture()
        system = fixture.temporary.appending("system")
        try FileManager.default.createDirectory(at: system, withIntermediateDirectories: true)
    }

    func target() throws -> CommandTarget {
        let time = self.time
        return try CommandTarget(environment: fixture.environment(files: scripts), notify: fixture.notify, now: { time.now })
    }

    func request(_ version: ServedVersion, apply: [String]? = nil, check: Bool = true, remove: Bool = true,
                 timeout: String? = nil) throws -> DeploymentRequest {
        let target = ModelDeploymentSpec.Target.command(
            apply: apply ?? ["/bin/sh", "deploy/apply.sh", system.path, "tag=${CAIRN_MODEL_VERSION}", "${NOT_OURS}"],
            remove: remove ? ["/bin/sh", "deploy/remove.sh", system.path] : [],
            check: check ? ["/bin/sh", "deploy/check.sh", system.path] : [],
            timeout: try timeout.map { try ManifestDuration(parsing: $0) })
        return DeploymentRequest(deployment: "churn-serving", version: version, target: target, sourceCommit: commit)
    }

    func file(_ name: String) -> String? { text(of: system.appendingPathComponent(name)) }

    func lines(_ name: String) -> Set<String> { Set((file(name) ?? "").split(separator: "\n").map(String.init)) }

    /// Ensures `request` until the target reports a change and the phase is no longer progressing.
    func settle(_ target: CommandTarget, _ request: DeploymentRequest, retry: Bool = false) async throws -> DeploymentObservation {
        for _ in 0..<4 {
            let next = await fixture.nextChange()
            try #require(next == request.deployment, "no change was reported")
            let observation = try await target.ensure(request, retry: retry)
            // Fast commands may have ended, each telling, before the first look: those tellings go.
            if observation.phase != .progressing {
                while await fixture.nextChange(within: 0.2) != nil {}
                return observation
            }
        }
        throw CancellationError()
    }

    @Test func applyRunsInTheBackgroundWithTheVersionInItsEnvironmentAndArguments() async throws {
        let target = try target()
        let version = try fixture.version(1, "weights v1")
        let request = try request(version, check: false)

        let first = try await target.ensure(request, retry: true)
        #expect(first.phase == .progressing && first.reason == "Applying" && first.serving == nil)

        let done = try await settle(target, request)
        #expect(done.phase == .serving && done.serving == 1 && done.reason == "Serving")
        #expect(done.message == "churn@1 was handed over: `apply` exited 0")
        #expect(done.recheckAfter == nil, "without check there is nothing to recheck")
        #expect(await target.inFlight().isEmpty)

        let environment = lines("apply-env")
        for line in ["CAIRN_DEPLOYMENT=churn-serving", "CAIRN_MODEL_NAME=churn", "CAIRN_MODEL_VERSION=1",
                     "CAIRN_MODEL_PATH=\(fixture.artifacts.path(of: version.artifact.digest).path)",
                     "CAIRN_MODEL_SHA256=\(version.artifact.digest.hex)", "CAIRN_SOURCE_COMMIT=\(commit)",
                     "PATH=\(LocalExecutor.runPath)", "LANG=C.UTF-8"] {
            #expect(environment.contains(line), "\(line) is missing from \(environment.sorted())")
        }
        #expect(file("apply-args") == "\(system.path)\ntag=1\n${NOT_OURS}\n")
        // It ran in a checkout of the commit, and its output went to a log.
        let folder = fixture.serving.appendingPathComponent("churn-serving")
        #expect(environment.contains("PWD=\(folder.path)/work-c0ffee000000"), "\(environment.sorted())")
        #expect(text(of: folder.appendingPathComponent("apply.log"))?.contains("exited with status 0") == true)

        // Asked again, it is not applied again.
        let again = try await target.ensure(request, retry: false)
        #expect(again.phase == .serving && file("apply-count") == "1\n")
    }

    @Test func aFailedApplyStaysFailedUntilRetried() async throws {
        let target = try target()
        try Data().write(to: system.appendingPathComponent("fail-apply"))
        let request = try request(try fixture.version(1, "weights v1"))

        _ = try await target.ensure(request, retry: true)
        let failed = try await settle(target, request)
        #expect(failed.phase == .failed && failed.reason == "ApplyFailed" && failed.serving == nil)
        #expect(failed.message.contains("`apply` of churn@1 exited with status 3 after "), "\(failed.message)")
        #expect(failed.message.hasSuffix(": cannot reach the cluster"), "\(failed.message)")

        let sticky = try await target.ensure(request, retry: false)
        #expect(sticky.phase == .failed && sticky.reason == "ApplyFailed")
        #expect(file("apply-count") == "1\n")
        #expect(await target.inFlight().isEmpty)

        try FileManager.default.removeItem(at: system.appendingPathComponent("fail-apply"))
        let retried = try await target.ensure(request, retry: true)
        #expect(retried.phase == .progressing && retried.reason == "Applying")
        let served = try await settle(target, request)
        #expect(served.phase == .serving && served.message == "churn@1 was handed over: `apply` exited 0 and `check` agreed")
        #expect(served.recheckAfter == .seconds(60))
        #expect(file("apply-count") == "2\n")
    }

    @Test func aCheckThatDisagreesRightAfterApplyFails() async throws {
        let target = try target()
        let request = try request(try fixture.version(1, "v1"), apply: ["/bin/sh", "-c", "exit 0"])
        _ = try await target.ensure(request, retry: true)
        let failed = try await settle(target, request)
        #expect(failed.phase == .failed && failed.reason == "CheckFailed")
        #expect(failed.message.contains("but `check` disagreed: it exited with status 1"), "\(failed.message)")
        #expect(failed.message.hasSuffix("the cluster serves no churn@1"), "\(failed.message)")
    }

    @Test func aRecheckThatDisagreesIsDriftAndTheVersionIsAppliedAgain() async throws {
        let target = try target()
        let request = try request(try fixture.version(1, "v1"))
        _ = try await target.ensure(request, retry: true)
        #expect(try await settle(target, request).phase == .serving)

        // The check that just agreed is not run again at once (counted at the end).
        #expect(try await target.ensure(request, retry: false).phase == .serving)

        // Someone takes the model off the cluster by hand; the next recheck finds it.
        try FileManager.default.removeItem(at: system.appendingPathComponent("served"))
        time.advance(by: 31)
        let stale = try await target.ensure(request, retry: false)
        #expect(stale.phase == .serving && stale.recheckAfter == .seconds(60), "the last check stands until the new one ends")

        #expect(await fixture.nextChange() == "churn-serving")
        // Applying again, or (on a loaded machine) checking or done already: the drift is told throughout.
        let reapplying = try await target.ensure(request, retry: false)
        let drift = "`check` no longer found churn@1 served (it exited with status 1"
        #expect(reapplying.drift.count == 1 && reapplying.drift[0].hasPrefix(drift), "\(reapplying.drift)")
        #expect(reapplying.drift.first?.hasSuffix("the cluster serves no churn@1); applied it again") == true)

        let healed = reapplying.phase == .progressing ? try await settle(target, request) : reapplying
        #expect(healed.phase == .serving && healed.drift == reapplying.drift)
        #expect(file("served") == "1\n" && file("apply-count") == "2\n")
        #expect(file("check-count") == "3\n", "after the first apply, the recheck, and after applying again")
        #expect(try await target.ensure(request, retry: false).drift.isEmpty, "drift is reported once served again, then forgotten")
    }

    @Test func removeRunsTheRemoveCommandWithTheLastAppliedVersionsEnvironment() async throws {
        let target = try target()
        let version = try fixture.version(2, "weights v2")
        let request = try request(version)
        _ = try await target.ensure(request, retry: true)
        #expect(try await settle(target, request).phase == .serving)

        // A restarted daemon knows it from its record: applied, so not applied again.
        let restarted = try self.target()
        #expect(try await restarted.recover() == ["churn-serving"])
        #expect(try await restarted.ensure(request, retry: false).phase == .serving)
        #expect(file("apply-count") == "1\n")

        try Data().write(to: system.appendingPathComponent("fail-remove"))
        let error = await reconcileError(.transient, "RemoveFailed") { try await restarted.remove(deployment: "churn-serving") }
        #expect(error?.message.hasSuffix("the cluster says no") == true, "\(String(describing: error))")
        #expect(try await restarted.recover() == ["churn-serving"], "a failed remove keeps the record, to try again")

        try FileManager.default.removeItem(at: system.appendingPathComponent("fail-remove"))
        try await restarted.remove(deployment: "churn-serving")
        let environment = lines("remove-env")
        for line in ["CAIRN_MODEL_VERSION=2", "CAIRN_MODEL_SHA256=\(version.artifact.digest.hex)", "CAIRN_DEPLOYMENT=churn-serving"] {
            #expect(environment.contains(line), "\(line) is missing from \(environment.sorted())")
        }
        #expect(file("served") == nil)
        #expect(try await restarted.recover().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.serving.appendingPathComponent("churn-serving").path))
    }

    @Test func anApplyThatTakesTooLongFails() async throws {
        let target = try target()
        let request = try request(try fixture.version(1, "v1"), apply: ["/bin/sh", "deploy/slow.sh"], timeout: "1s")
        _ = try await target.ensure(request, retry: true)
        let failed = try await settle(target, request)
        #expect(failed.phase == .failed && failed.reason == "ApplyFailed")
        #expect(failed.message.contains("timed out after 1."), "\(failed.message)")
    }

    @Test func anotherVersionStopsTheApplyUnderWay() async throws {
        let target = try target()
        try Data().write(to: system.appendingPathComponent("slow-v1"))
        let first = try request(try fixture.version(1, "v1"))
        let second = try request(try fixture.version(2, "v2"))
        #expect(try await target.ensure(first, retry: true).phase == .progressing)
        #expect(await target.inFlight() == ["churn-serving"], "reconcile --once waits for an apply under way")
        #expect(try await target.ensure(second, retry: true).phase == .progressing)
        let served = try await settle(target, second)
        #expect(served.phase == .serving && served.version == 2 && file("served") == "2\n")
        #expect(await target.inFlight().isEmpty)
    }

    @Test func aProgramThatIsNotThereBacksOff() async throws {
        let target = try target()
        let request = try request(try fixture.version(1, "v1"), apply: ["deploy/missing.sh"])
        let error = await reconcileError(.transient, "ApplyNotStarted") { try await target.ensure(request, retry: true) }
        #expect(error?.message.contains("deploy/missing.sh was not found") == true, "\(String(describing: error))")
        #expect(await target.inFlight().isEmpty)
    }
}

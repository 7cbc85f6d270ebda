import CairnCore
import CairnManifests
import Testing

/// Where a run may go and what it may ask for there: the check every stage and training meets
/// before it is keyed (`RunKey`), so a run that cannot go anywhere stalls its object, saying why.
@Suite struct ExecutionPolicyTests {
    let localOnly = ExecutionPolicy(maxRuns: 2, hostMemoryBytes: 8 << 30)
    let withSlurm = ExecutionPolicy(maxRuns: 2, defaultExecutor: .slurm, executors: [.local, .slurm], hostMemoryBytes: 8 << 30)

    @Test func slurmIsRefusedWhereTheDaemonHasNone() {
        let refusal = localOnly.refusal(executor: .slurm, resources: RunResources())
        #expect(refusal?.reason == "ExecutorUnavailable")
        #expect(refusal?.message.hasPrefix("asks for executor: slurm, which this daemon does not have; start it with --slurm-shared-dir") == true)
        #expect(withSlurm.refusal(executor: .slurm, resources: RunResources()) == nil)
    }

    @Test func localRunsGetSlotsNoGPUsAndAtMostTheMachinesMemory() throws {
        #expect(localOnly.refusal(executor: nil, resources: RunResources(cpus: 2)) == nil)
        #expect(localOnly.refusal(executor: nil, resources: RunResources(cpus: 3))?.message
                == "needs 3 cpus, and this daemon runs at most 2 at once (--max-runs) (the daemon's --executor is local)")
        #expect(localOnly.refusal(executor: .local, resources: RunResources(gpus: 1))?.message
                == "asks for 1 GPU, and the local executor cannot give any; use executor: slurm")
        #expect(localOnly.refusal(executor: nil, resources: RunResources(memory: try MemorySize(parsing: "16GiB")))?.message
                == "asks for 16GiB of memory, and this machine has 8192MiB (the daemon's --executor is local)")
        #expect(localOnly.refusal(executor: nil, resources: RunResources(memory: try MemorySize(parsing: "4GiB"))) == nil)
    }

    /// On Slurm, the cluster decides what it can give: GPUs and more cpus than local slots pass.
    @Test func slurmRunsAreNotHeldToTheLocalMachine() throws {
        let big = RunResources(cpus: 64, memory: try MemorySize(parsing: "512GiB"), gpus: 8)
        #expect(withSlurm.refusal(executor: nil, resources: big) == nil)
        #expect(withSlurm.refusal(executor: .local, resources: big)?.reason == "InsufficientResources")
    }
}

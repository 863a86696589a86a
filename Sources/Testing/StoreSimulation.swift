import EmbedStarCore
import Foundation

/// The key a collector gives a repo record, of every kind a store may meet: SurrealDB keeps
/// integers, strings (some of them digits only), uuids, arrays and objects; other stores see the
/// text of the key.
public indirect enum RecordKey: Sendable, Hashable, CustomStringConvertible {
    case number(Int64)
    case text(String)
    case uuid(UUID)
    case array([RecordKey])
    case object([String: RecordKey])

    /// A readable, unique text for stores whose ids are text.
    public var description: String {
        switch self {
        case .number(let value): "\(value)"
        case .text(let value): "⟨\(value)⟩"
        case .uuid(let value): "u'\(value.uuidString.lowercased())'"
        case .array(let items): "[\(items.map(\.description).joined(separator: ", "))]"
        case .object(let fields): "{ \(fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")) }"
        }
    }
}

/// What a collector does to a store's data, outside the ``RepoStore`` contract: a simulated
/// collector writes through it, as the real one would (its own keys, its own statements).
public protocol SimulationCollector: Sendable {
    /// Creates the repo under `key`, or changes its collector fields (embed-star's own stay).
    func put(_ repo: Repo, key: RecordKey) async throws
    /// Deletes the repo under `key`.
    func delete(key: RecordKey) async throws
    /// Removes the vector of the repo under `key` as an operator would (its text unchanged);
    /// false when the store offers no way to.
    func dropVector(key: RecordKey) async throws -> Bool
}

/// Invariants of the ``RepoStore`` contract checked under random schedules, the way a
/// deterministic simulator explores what example tests do not: from one seed, a schedule of
/// instances (each its own store handle, as separate processes are) that claim, write, fail,
/// renew, release, crash, restart and change models (including a canary rolled back), a collector
/// that inserts, changes and deletes repos under keys of every kind, and `resetFailed`. After every
/// step, and at the end once every lease ran out and the running instances drained the queue:
///
/// - every repo holds the served model's vector of its latest text, or is failed with a reason
///   (here: only repos whose text the simulated provider rejects);
/// - `stats` equals what `scan` reads record by record, and the collector's count;
/// - no repo is handed to two instances of one model while a lease on it is live;
/// - an applied write carries the text the collector last wrote (never a vector over a newer
///   text), and is stored until something changes the repo again; nothing stays leased to an
///   instance that is gone once its lease ran out.
///
/// The store's clock is real (leases and liveness are short, and the schedule waits them out),
/// so a step that runs actions at once is not exactly repeatable; the schedule is. A violation
/// throws ``SimulationFailure`` with the seed and the schedule so far.
public struct StoreSimulation: Sendable {
    public struct Options: Sendable {
        public var steps = 80
        public var initialRepos = 16
        public var lease: Duration = .milliseconds(900)
        /// A claim's long lease (a batch slower than usual): the end of the run waits it out.
        public var longLease: Duration = .milliseconds(5_400)
        public var liveness: Duration = .milliseconds(1_500)
        public var models = ["sim/a@4", "sim/b@4"]
        /// Steps that run two or three instance actions at once.
        public var concurrency = true
        /// The key kinds the collector uses for new repos.
        public var keyKinds: [KeyKind] = KeyKind.allCases
        /// Whether an operator removes vectors now and then (``SimulationCollector/dropVector(key:)``).
        public var vectorsRemoved = true
        /// What an idle instance of the store does about an engine that can leave its indexes
        /// wrong after concurrent writes of one record (SurrealDB 2.x): run when a quiet point's
        /// `stats` disagree with the records, which are then compared again (``Report/repairs``
        /// counts it; answers whether anything was set right). Nil: a disagreement fails the run.
        public var repair: (@Sendable (any RepoStore, _ modelIdentity: String) async throws -> Bool)?
        public init() {}
    }

    public enum KeyKind: String, CaseIterable, Sendable { case number, text, digits, uuid, array, object }

    /// Opens a new handle on the shared data (another process); `prepare` is called by the simulation.
    public typealias Open = @Sendable () async throws -> any RepoStore

    let open: Open
    let collector: any SimulationCollector
    var options: Options

    public init(open: @escaping Open, collector: any SimulationCollector, options: Options = Options()) {
        self.open = open
        self.collector = collector
        self.options = options
    }

    /// Figures of one run.
    public struct Report: Sendable, CustomStringConvertible {
        public var seed: UInt64
        /// Schedules run (one per seed).
        public var schedules = 1
        public var steps = 0
        public var checks = 0
        public var claims = 0
        public var writesApplied = 0
        public var refusedWrites = 0
        public var modelChanges = 0
        public var crashes = 0
        /// Quiet points whose counts agreed with the records only after ``Options/repair``.
        public var repairs = 0
        public var description: String {
            "\(schedules == 1 ? "seed \(seed)" : "\(schedules) schedules from seed \(seed)"): \(steps) steps, \(checks) invariant checks, \(claims) repos claimed, \(writesApplied) writes applied, "
                + "\(refusedWrites) refused, \(modelChanges) model changes, \(crashes) crashes"
                + (repairs > 0 ? ", \(repairs) counts set right by the store's repair" : "")
        }
    }

    /// A long run asked for by the environment: `EMBED_STAR_SIM_RUNS` seeds from
    /// `EMBED_STAR_SIM_FIRST` (default 1000); nil when not asked (bench/simulate sets them).
    public static var longRun: (count: Int, first: UInt64)? {
        let environment = ProcessInfo.processInfo.environment
        guard let count = environment["EMBED_STAR_SIM_RUNS"].flatMap(Int.init), count > 0 else { return nil }
        return (count, environment["EMBED_STAR_SIM_FIRST"].flatMap(UInt64.init) ?? 1_000)
    }

    /// The long run the environment asks for (``longRun``), printed as `simulation LABEL: figures`
    /// (`bench/simulate` collects those lines); throws the first failure.
    public static func runLong(_ label: String, setup: @escaping Setup) async throws {
        guard let (count, first) = longRun else { return }
        print("simulation \(label): \(try await run(seeds: count, from: first, setup: setup))")
    }

    /// A simulation on fresh data, and what to close after it.
    public typealias Setup = @Sendable (_ seed: UInt64) async throws -> (simulation: StoreSimulation, close: @Sendable () async -> Void)

    /// Runs `count` seeds from `first`, each on fresh data from `setup`, `parallel` at a time;
    /// throws the first failure. The figures add up over the runs (`seed` is the first).
    public static func run(seeds count: Int, from first: UInt64, parallel: Int = 2, setup: @escaping Setup) async throws -> Report {
        var total = Report(seed: first)
        total.schedules = 0
        @Sendable func attempt(_ seed: UInt64, steps: Int?) async throws -> Report {
            var (simulation, close) = try await setup(seed)
            if let steps { simulation.options.steps = steps }
            do {
                let report = try await simulation.run(seed: seed)
                await close()
                return report
            } catch {
                await close()
                throw error
            }
        }
        @Sendable func one(_ seed: UInt64) async throws -> Report {
            do {
                return try await attempt(seed, steps: nil)
            } catch let failure as SimulationFailure {
                throw await shrink(failure) { try await attempt(seed, steps: $0) }
            }
        }
        try await withThrowingTaskGroup(of: Report.self) { group in
            var next = first
            let end = first + UInt64(count)
            while next < end, next < first + UInt64(parallel) {
                let seed = next
                group.addTask { try await one(seed) }
                next += 1
            }
            while let report = try await group.next() {
                total.schedules += 1
                total.steps += report.steps
                total.checks += report.checks
                total.claims += report.claims
                total.writesApplied += report.writesApplied
                total.refusedWrites += report.refusedWrites
                total.modelChanges += report.modelChanges
                total.crashes += report.crashes
                total.repairs += report.repairs
                if next < end {
                    let seed = next
                    group.addTask { try await one(seed) }
                    next += 1
                }
            }
        }
        return total
    }

    /// The shortest prefix of a failing schedule that still fails: the seed's schedule with fewer
    /// steps is the same schedule cut short, so a binary search over the step count (at most 8
    /// runs) finds a short one. The store's real clock and the steps that run actions at once can
    /// make a shorter run pass where a longer failed: the shortest failure seen is kept.
    static func shrink(_ failure: SimulationFailure, run: (Int) async throws -> Report) async -> SimulationFailure {
        var shortest = failure
        var low = 0, high = failure.steps
        for _ in 0..<8 where low < high {
            let middle = (low + high) / 2
            do {
                _ = try await run(middle)
                low = middle + 1
            } catch let shorter as SimulationFailure {
                shortest = shorter
                high = middle
            } catch {
                low = middle + 1
            }
        }
        if shortest.steps < failure.steps { shortest.shrunkFrom = failure.steps }
        return shortest
    }

    public func run(seed: UInt64) async throws -> Report {
        let world = World(seed: seed, options: options, open: open, collector: collector)
        do {
            try await world.run()
        } catch let failure as SimulationFailure {
            await world.shutdown()
            throw failure
        } catch {
            await world.shutdown()
            throw SimulationFailure(seed: seed, message: "\(error)", schedule: await world.schedule, steps: options.steps)
        }
        await world.shutdown()
        return await world.report
    }
}

public struct SimulationFailure: Error, CustomStringConvertible {
    public var seed: UInt64
    public var message: String
    public var schedule: [String]
    /// The steps the run was given (its schedule is the seed's first `steps` steps, then the end).
    public var steps: Int
    /// Set when a shorter run of the seed (fewer steps) failed too: this is the shortest found.
    public var shrunkFrom: Int?
    public var description: String {
        "simulation seed \(seed) broke an invariant: \(message)\n"
            + (shrunkFrom.map { "schedule shrunk from \($0) to \(steps) steps (rerun: seed \(seed), options.steps = \(steps)):\n" }
                ?? "schedule (rerun with this seed, \(steps) steps):\n")
            + schedule.enumerated().map { "  \($0.offset). \($0.element)" }.joined(separator: "\n")
    }
}

/// The simulated world: the truth the collector wrote, the instances, and the checks.
private actor World {
    struct SimRepo {
        var key: RecordKey
        var githubID: Int64
        var description: String
        var version = 0
        var rejected: Bool { description.contains("REJECT") }
    }

    final class Instance: @unchecked Sendable {  // touched by the world actor only
        let owner: String
        let model: String
        let store: any RepoStore
        var held: [RepoID: ClaimedRepo] = [:]
        var firstClaim: Int?
        init(owner: String, model: String, store: any RepoStore) {
            self.owner = owner
            self.model = model
            self.store = store
        }
    }

    /// A lease as the world saw it handed out.
    struct Lease {
        var owner: String
        var model: String
        var until: ContinuousClock.Instant
    }

    var random: SeededRandom
    let seed: UInt64
    let options: StoreSimulation.Options
    let open: StoreSimulation.Open
    let collector: any SimulationCollector
    var repos: [Int64: SimRepo] = [:]
    var nextGitHubID: Int64 = 7_000_000
    var instances: [Instance] = []
    var gone: [Instance] = []
    var leases: [Int64: Lease] = [:]
    /// When the last lease ever handed out ends (revoked ones included: not every store revokes).
    var leaseHorizon = ContinuousClock.now
    /// Repos the collector changes while instances act at once: a write of their previous text
    /// may land before the change does.
    var changingNow: Set<Int64> = []
    /// Instances act at once in this step, and the writes that applied in it, per repo.
    var concurrentStep = false
    var appliedNow: [Int64: [(owner: String, hash: String, model: String)]] = [:]
    /// What an applied write stored (its hash and model), until the collector or another write
    /// changes the repo: the store must hold it (a write reported applied is stored).
    var written: [Int64: (hash: String, model: String)] = [:]
    var idOf: [Int64: RepoID] = [:]
    var started = 0
    var schedule: [String] = []
    var report: StoreSimulation.Report
    let maxAttempts = 50

    init(seed: UInt64, options: StoreSimulation.Options, open: @escaping StoreSimulation.Open, collector: any SimulationCollector) {
        self.seed = seed
        self.options = options
        self.open = open
        self.collector = collector
        random = SeededRandom(seed: seed)
        report = StoreSimulation.Report(seed: seed)
    }

    func shutdown() async {
        for instance in instances { await instance.store.shutdown() }
        instances = []
    }

    func note(_ line: String) {
        schedule.append(line)
    }

    func fail(_ message: String) -> SimulationFailure {
        SimulationFailure(seed: seed, message: message, schedule: schedule, steps: options.steps)
    }

    // MARK: The schedule

    func run() async throws {
        for _ in 0..<options.initialRepos { try await insertRepo() }
        try await startInstance(model: options.models[0])
        try await startInstance(model: options.models[0])
        for _ in 0..<options.steps {
            try await step()
            report.steps += 1
            try await checkQuietPoint()
        }
        try await quiesce()
    }

    func chance(_ p: Double) -> Bool { random.nextUnit() < p }
    func below(_ n: Int) -> Int { Int(random.next() % UInt64(max(n, 1))) }

    func step() async throws {
        let roll = random.nextUnit()
        switch roll {
        case ..<0.12: try await collectorStep()
        case ..<0.19: try await fleetStep()
        case ..<0.22: await waitOutLeases()
        case ..<0.24:
            let reset = try await anyStore().resetFailed()
            note("retry-failed (\(reset) reset)")
        default:
            if options.concurrency, chance(0.2), instances.count > 1 {
                // Distinct instances, or one instance's claims side by side (its workers): an
                // instance's claim beside its own failure or write of the same repo (a lease that
                // ran out and was claimed again by its holder) leaves the world unable to tell
                // which lease the store ended.
                let first = instances[below(instances.count)]
                var actors = [first]
                for _ in 0..<(1 + below(2)) {
                    let next = instances[below(instances.count)]
                    if !actors.contains(where: { $0 === next }) { actors.append(next) }
                }
                // Never a release of all of an instance's leases beside its other actions: the
                // contract lets it end a claim committed a moment before (the pipeline keeps the
                // two apart, ``ClaimGate``), so the world could not tell what is held.
                // An instance's first claim never runs beside another's: which of two first claims
                // the store records first decides the served model, and the world could not tell.
                var plans = actors.map { actor -> (Instance, Action) in
                    let action = plan()
                    if case .claim = action, actor.firstClaim == nil { return (actor, .renew) }
                    return (actor, action)
                }
                if chance(0.3), first.firstClaim != nil {
                    plans.append((first, .claim(limit: 1 + below(4), long: false)))
                    plans[0].1 = .claim(limit: 1 + below(4), long: false)
                }
                // Now and then the collector changes a repo at the same moment.
                let change = chance(0.3) && !repos.isEmpty ? random.pick(repos.keys.sorted()) : nil
                note("at once: " + plans.map { "\($0.0.owner) \($0.1)" }.joined(separator: " | ")
                    + (change.map { " | collector changes \(repos[$0]!.key)" } ?? ""))
                if let change { changingNow.insert(change) }
                concurrentStep = true
                appliedNow = [:]
                defer {
                    changingNow = []
                    concurrentStep = false
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (instance, action) in plans {
                        group.addTask { try await self.act(instance, action, log: false) }
                    }
                    if let change { group.addTask { try await self.change(change) } }
                    try await group.waitForAll()
                }
                // A write that applied alone in the step must be stored; two of one repo cannot
                // both apply (one lease at a time).
                for (github, writes) in appliedNow {
                    if writes.count > 1 {
                        throw fail("repo \(github) took \(writes.count) writes in one step (\(writes.map(\.owner).joined(separator: ", ")))")
                    }
                    if let only = writes.first, !changingNow.contains(github), repos[github] != nil {
                        written[github] = (only.hash, only.model)
                    }
                }
            } else if let instance = instances.isEmpty ? nil : instances[below(instances.count)] {
                try await act(instance, plan(), log: true)
            } else {
                try await startInstance(model: options.models[0])
            }
        }
    }

    enum Action: CustomStringConvertible {
        case claim(limit: Int, long: Bool)
        case complete(count: Int)
        case failSome(count: Int)
        case renew
        case release(count: Int)
        case releaseAll(keep: Int)
        /// The store's idle work, between the others' claims and writes.
        case maintain
        var description: String {
            switch self {
            case .claim(let limit, let long): "claim \(limit)\(long ? " (long lease)" : "")"
            case .complete(let count): "complete \(count)"
            case .failSome(let count): "fail \(count) (will retry)"
            case .renew: "renew"
            case .release(let count): "release \(count)"
            case .releaseAll(let keep): "release all but \(keep)"
            case .maintain: "maintain"
            }
        }
    }

    func plan() -> Action {
        switch random.nextUnit() {
        case ..<0.40: .claim(limit: 1 + below(6), long: chance(0.2))
        case ..<0.75: .complete(count: 1 + below(6))
        case ..<0.82: .failSome(count: 1 + below(2))
        case ..<0.88: .renew
        case ..<0.94: .release(count: 1 + below(3))
        case ..<0.97: .releaseAll(keep: below(3))
        default: .maintain
        }
    }

    func anyStore() async throws -> any RepoStore {
        if let instance = instances.first { return instance.store }
        try await startInstance(model: options.models[0])
        return instances[0].store
    }

    // MARK: Instances

    func startInstance(model: String) async throws {
        started += 1
        let store = try await open()
        try await store.prepare()
        let owner = "sim\(seed % 10_000)-\(started)"
        instances.append(Instance(owner: owner, model: model, store: store))
        note("start \(owner) on \(model)")
    }

    /// Starts, stops and crashes instances; changes the model of the fleet and rolls a canary back.
    func fleetStep() async throws {
        let fleetModel = instances.last?.model ?? options.models[0]
        let other = options.models.first { $0 != fleetModel } ?? fleetModel
        switch random.nextUnit() {
        case ..<0.3 where instances.count < 4:
            let canary = chance(0.4)
            try await startInstance(model: canary ? other : fleetModel)
            if canary {
                report.modelChanges += 1
                let instance = instances[instances.count - 1]
                try await act(instance, .claim(limit: 3, long: false), log: true)
                if chance(0.6) {
                    try await stop(instance, crash: chance(0.5), why: "canary rolled back")
                }
            }
        case ..<0.55 where instances.count > 1:
            try await stop(instances[below(instances.count)], crash: true, why: "crash")
        case ..<0.75 where instances.count > 1:
            try await stop(instances[below(instances.count)], crash: false, why: "stop")
        default:
            // A restart: one instance stops and a new one takes its place on its model.
            guard !instances.isEmpty else { return try await startInstance(model: fleetModel) }
            let instance = instances[below(instances.count)]
            try await stop(instance, crash: chance(0.5), why: "restart")
            try await startInstance(model: instance.model)
        }
    }

    func stop(_ instance: Instance, crash: Bool, why: String) async throws {
        instances.removeAll { $0 === instance }
        if crash {
            report.crashes += 1
        } else {
            try await instance.store.release(Array(instance.held.keys), owner: instance.owner)
            for claim in instance.held.values { leases[claim.repo.githubID ?? -1] = nil }
            instance.held = [:]
        }
        await instance.store.shutdown()
        gone.append(instance)
        note("\(crash ? "crash" : "stop") \(instance.owner) (\(why))")
    }

    // MARK: What an instance does

    func act(_ instance: Instance, _ action: Action, log: Bool) async throws {
        if log { note("\(instance.owner) \(action)") }
        switch action {
        case .claim(let limit, let long):
            let duration = long ? options.longLease : options.lease
            let claimedAt = ContinuousClock.now
            // Started when its first claim is sent: the store records it before it claims.
            if instance.firstClaim == nil {
                started += 1
                instance.firstClaim = started
            }
            let claimed = try await instance.store.claimPending(ClaimRequest(
                owner: instance.owner, limit: limit, leaseDuration: duration, modelIdentity: instance.model, liveness: options.liveness))
            // A claim of the newest instance's model may announce it, and a model change takes
            // the other models' leases back (their writes are refused): those no longer count.
            if instances.max(by: { ($0.firstClaim ?? 0) < ($1.firstClaim ?? 0) }) === instance {
                leases = leases.filter { $0.value.model == instance.model }
            }
            try noteClaims(claimed, by: instance, until: claimedAt + duration)
            // The store's leases start when its claim takes them, after it was sent (a sweep or
            // a wait for its turn first): the time they all run out counts from its answer.
            if !claimed.isEmpty { leaseHorizon = max(leaseHorizon, ContinuousClock.now + duration) }
        case .complete(let count):
            let chosen = Array(instance.held.values.sorted { $0.repo.id < $1.repo.id }.prefix(count))
            guard !chosen.isEmpty else { return }
            try await complete(chosen, by: instance)
        case .failSome(let count):
            let chosen = Array(instance.held.values.sorted { $0.repo.id < $1.repo.id }.prefix(count))
            guard !chosen.isEmpty else { return }
            for claim in chosen { forget(claim, of: instance) }
            _ = try await instance.store.recordFailures(chosen.map {
                RepoFailure(id: $0.repo.id, revision: $0.revision, reason: "simulated outage", permanent: false, retryAfter: .zero)
            }, owner: instance.owner, maxAttempts: maxAttempts)
        case .renew:
            let ids = Array(instance.held.keys)
            let at = ContinuousClock.now
            let renewed = try await instance.store.renew(ids, owner: instance.owner, leaseDuration: options.lease)
            if !renewed.isEmpty { leaseHorizon = max(leaseHorizon, ContinuousClock.now + options.lease) }
            for id in renewed {
                // The store's lease now ends `lease` after its clock read `at` or later (a long
                // lease renewed ends sooner).
                if let claim = instance.held[id], let github = claim.repo.githubID, var lease = leases[github], lease.owner == instance.owner {
                    lease.until = at + options.lease
                    leases[github] = lease
                }
            }
        case .release(let count):
            let chosen = Array(instance.held.values.sorted { $0.repo.id < $1.repo.id }.prefix(count))
            for claim in chosen { forget(claim, of: instance) }
            try await instance.store.release(chosen.map(\.repo.id), owner: instance.owner)
        case .releaseAll(let keep):
            let kept = Set(instance.held.keys.sorted().prefix(keep))
            for claim in instance.held.values where !kept.contains(claim.repo.id) { forget(claim, of: instance) }
            _ = try await instance.store.releaseAll(owner: instance.owner, except: kept)
        case .maintain:
            try await instance.store.maintain(owner: instance.owner, modelIdentity: instance.model)
        }
    }

    func forget(_ claim: ClaimedRepo, of instance: Instance) {
        instance.held[claim.repo.id] = nil
        if let github = claim.repo.githubID, leases[github]?.owner == instance.owner { leases[github] = nil }
    }

    /// Checks a claim's answer: known repos, ids that stay the same, and no live lease of another
    /// instance of the same model.
    func noteClaims(_ claimed: [ClaimedRepo], by instance: Instance, until: ContinuousClock.Instant) throws {
        report.claims += claimed.count
        let now = ContinuousClock.now
        for claim in claimed {
            guard let github = claim.repo.githubID else { throw fail("\(instance.owner) claimed \(claim.repo.id) without its github_id") }
            guard repos[github] != nil || idOf[github] != nil else { throw fail("\(instance.owner) claimed \(claim.repo.id), which the collector never wrote") }
            if let known = idOf[github], known != claim.repo.id {
                throw fail("repo \(github) came back as \(claim.repo.id), earlier as \(known): its record id does not round-trip")
            }
            idOf[github] = claim.repo.id
            // A margin for the store's clock and the time between its answer and this line.
            if let lease = leases[github], lease.owner != instance.owner, lease.model == instance.model,
               lease.until - .milliseconds(250) > now, instances.contains(where: { $0.owner == lease.owner }) || gone.contains(where: { $0.owner == lease.owner }) {
                throw fail("\(claim.repo.id) was handed to \(instance.owner) while \(lease.owner) held a live lease on it (same model)")
            }
            leases[github] = Lease(owner: instance.owner, model: instance.model, until: until)
            leaseHorizon = max(leaseHorizon, until)
            instance.held[claim.repo.id] = claim
            for other in instances where other !== instance { other.held[claim.repo.id] = nil }
        }
    }

    /// Embeds (or, for the rejected text, fails) claimed repos as the pipeline would, from the
    /// text of the claim, and checks what the store applied against the collector's latest text.
    func complete(_ chosen: [ClaimedRepo], by instance: Instance) async throws {
        for claim in chosen { forget(claim, of: instance) }
        var writes: [RepoWrite] = []
        var failures: [RepoFailure] = []
        for claim in chosen {
            let text = Self.text(claim.repo)
            if text.contains("REJECT") {
                failures.append(RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "simulated rejection of this text",
                                            permanent: true, retryAfter: .zero))
                continue
            }
            let hash = Self.hash(text)
            let change: RepoWrite.Change = claim.embeddedHash == hash
                ? .unchanged(contentHash: hash)
                : .embedded(vector: Self.vector(hash: hash, model: instance.model), contentHash: hash, generatedAt: Date())
            writes.append(RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: instance.model, change: change))
        }
        if !failures.isEmpty {
            _ = try await instance.store.recordFailures(failures, owner: instance.owner, maxAttempts: maxAttempts)
        }
        guard !writes.isEmpty else { return }
        let outcomes = try await instance.store.write(writes, owner: instance.owner)
        for write in writes {
            guard outcomes[write.id] == .applied else {
                report.refusedWrites += 1
                continue
            }
            report.writesApplied += 1
            guard let github = chosen.first(where: { $0.repo.id == write.id })?.repo.githubID, let truth = repos[github] else {
                throw fail("a write of \(write.id) applied to a repo the collector deleted")
            }
            let hash: String
            switch write.change {
            case .embedded(_, let h, _): hash = h
            case .unchanged(let h): hash = h
            }
            if hash != Self.hash(Self.text(truth)), !changingNow.contains(github) {
                throw fail("\(instance.owner)'s write of \(write.id) applied the text of an older version (collector at version \(truth.version))")
            }
            // Writes of one step that acts at once are judged when it ends.
            if concurrentStep {
                written[github] = nil
                appliedNow[github, default: []].append((instance.owner, hash, write.modelIdentity))
            } else {
                written[github] = (hash, write.modelIdentity)
            }
        }
    }

    // MARK: The collector

    func collectorStep() async throws {
        let existing = repos.keys.sorted()
        switch random.nextUnit() {
        case ..<0.35: try await insertRepo()
        case ..<0.75 where !existing.isEmpty:
            let github = random.pick(existing)
            note("collector changes \(repos[github]!.key)")
            try await change(github)
        case ..<0.85 where !existing.isEmpty:
            let github = random.pick(existing)
            let repo = repos[github]!
            repos[github] = nil
            leases[github] = nil
            written[github] = nil
            try await collector.delete(key: repo.key)
            note("collector deletes \(repo.key)")
        case ..<0.92 where !existing.isEmpty:
            let repo = repos[random.pick(existing)]!
            try await collector.put(Self.repo(repo), key: repo.key)
            note("collector rewrites \(repo.key) unchanged")
        default:
            guard options.vectorsRemoved, let github = existing.isEmpty ? nil : random.pick(existing) else { return }
            written[github] = nil
            if try await collector.dropVector(key: repos[github]!.key) {
                note("operator removes the vector of \(repos[github]!.key)")
                // The repo is pending again: its latest text has no vector.
            }
        }
    }

    /// The collector writes a new version of a repo's text (a fifth of them rejected).
    func change(_ github: Int64) async throws {
        guard var repo = repos[github] else { return }
        written[github] = nil
        repo.version += 1
        repo.description = chance(0.2) ? "REJECT me, version \(repo.version)" : "a library, version \(repo.version)"
        repos[github] = repo
        try await collector.put(Self.repo(repo), key: repo.key)
    }

    func insertRepo() async throws {
        nextGitHubID += 1
        let github = nextGitHubID
        let kind = random.pick(options.keyKinds)
        let key: RecordKey = switch kind {
        case .number: .number(github)
        case .text: .text("r-\(github)")
        case .digits: .text("\(github)")
        case .uuid: .uuid(UUID(uuidString: String(format: "00000000-0000-4000-8000-%012llx", github))!)
        case .array: .array([.text("gh"), .number(github)])
        case .object: .object(["gh": .number(github), "src": .text("sim")])
        }
        let repo = SimRepo(key: key, githubID: github, description: chance(0.1) ? "REJECT me, version 0" : "a library, version 0")
        repos[github] = repo
        try await collector.put(Self.repo(repo), key: key)
        note("collector inserts \(key)\(repo.rejected ? " (rejected text)" : "")")
    }

    static func repo(_ sim: SimRepo) -> Repo {
        Repo(id: RepoID("repo:\(sim.key)"), githubID: sim.githubID, fullName: "sim/p\(sim.githubID)", description: sim.description,
             url: "https://github.com/sim/p\(sim.githubID)", stars: 1, language: "Swift", owner: Repo.Owner(login: "sim"))
    }

    static func text(_ repo: Repo) -> String { "\(repo.fullName): \(repo.description ?? "")" }
    static func text(_ sim: SimRepo) -> String { text(repo(sim)) }

    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(value, radix: 16)
    }

    static func vector(hash: String, model: String) -> [Float] {
        var generator = SeededRandom(seed: UInt64(hash, radix: 16)! ^ UInt64(truncatingIfNeeded: model.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        return (0..<4).map { _ in Float(generator.nextUnit()) + 0.1 }
    }

    func waitOutLeases() async {
        note("time passes (leases and liveness run out)")
        try? await Task.sleep(for: max(options.lease, options.liveness) + .milliseconds(150))
    }

    // MARK: Checks

    /// What the store says, record by record, against its counts and the collector's truth.
    func read(_ store: any RepoStore, model: String) async throws -> [Int64: StoredRepo] {
        var found: [Int64: StoredRepo] = [:]
        var cursor: String?
        repeat {
            let page = try await store.scan(modelIdentity: model, after: cursor, limit: 50)
            if page.unreadable > 0 { throw fail("scan found \(page.unreadable) unreadable records") }
            for stored in page.repos {
                guard let github = stored.repo.githubID else { throw fail("scan returned \(stored.repo.id) without its github_id") }
                if found[github] != nil { throw fail("scan returned repo \(github) twice") }
                found[github] = stored
            }
            cursor = page.next
        } while cursor != nil
        return found
    }

    func checkQuietPoint() async throws {
        guard let store = instances.first?.store else { return }
        let model = instances.last!.model
        let stored = try await read(store, model: model)
        var stats = try await store.stats(modelIdentity: model)
        report.checks += 1
        if Set(stored.keys) != Set(repos.keys) {
            let missing = Set(repos.keys).subtracting(stored.keys).sorted(), extra = Set(stored.keys).subtracting(repos.keys).sorted()
            throw fail("the store holds other repos than the collector wrote (missing \(missing), extra \(extra))")
        }
        let counted = (embedded: stored.values.filter { $0.state == .embedded }.count, failed: stored.values.filter { $0.state == .failed }.count)
        func agree(_ stats: StoreStats) -> Bool {
            stats.total == repos.count && stats.embedded == counted.embedded && stats.failed == counted.failed
                && stats.pending == repos.count - counted.embedded - counted.failed
        }
        if !agree(stats), let repair = options.repair, try await repair(store, model) {
            note("the store's repair sets its counts right (stats said \(stats))")
            report.repairs += 1
            stats = try await store.stats(modelIdentity: model)
        }
        if !agree(stats) {
            throw fail("stats(\(model)) = \(stats) but the records say total \(repos.count), embedded \(counted.embedded), failed \(counted.failed)")
        }
        for (github, expected) in written {
            guard let repo = stored[github], repo.embedding != nil, repo.embeddingHash == expected.hash, repo.embeddingModel == expected.model else {
                throw fail("repo \(github)'s write was reported applied (\(expected.model), hash \(expected.hash)) but the store holds "
                    + "\(stored[github]?.embeddingModel ?? "no") vector with hash \(stored[github]?.embeddingHash ?? "none")")
            }
        }
        for (github, repo) in stored where repo.state == .embedded {
            guard repo.embedding != nil else { throw fail("\(repo.repo.id) counts as embedded without a vector") }
            if repo.embeddingHash != Self.hash(Self.text(repos[github]!)) {
                throw fail("\(repo.repo.id) counts as embedded but its vector is of an older text")
            }
        }
    }

    /// Ends the schedule: every lease and liveness runs out, the running instances drain the
    /// queue, and the final state is checked.
    func quiesce() async throws {
        note("quiesce")
        if instances.isEmpty { try await startInstance(model: options.models[0]) }
        // What the running instances hold is finished (written, or refused when it changed).
        for instance in instances where !instance.held.isEmpty {
            try await complete(Array(instance.held.values), by: instance)
        }
        // Leases of instances that are gone run out (long ones too), and so does their liveness.
        let now = ContinuousClock.now
        let wait = max(leaseHorizon - now, .zero) + max(options.lease, options.liveness) + .milliseconds(150)
        note("time passes (\(wait) for every lease and liveness to run out)")
        try await Task.sleep(for: wait)
        leases = [:]
        // Nothing stays leased to an instance that is gone once its lease ran out.
        if let store = instances.first?.store {
            for model in Set(options.models) {
                let leased = try await store.stats(modelIdentity: model).leased
                if leased != 0 { throw fail("\(leased) repos are still leased (\(model)) after every lease ran out") }
            }
        }
        var rounds = 0, quiet = 0
        while quiet < 2 {
            rounds += 1
            if rounds > 400 { throw fail("the running instances did not drain the queue in 400 rounds") }
            var any = false
            for instance in instances {
                try await act(instance, .claim(limit: 20, long: true), log: false)
                let held = Array(instance.held.values)
                if !held.isEmpty {
                    any = true
                    try await complete(held, by: instance)
                }
            }
            quiet = any ? 0 : quiet + 1
            if !any { try await Task.sleep(for: .milliseconds(100)) }
        }
        let served = instances.max { ($0.firstClaim ?? 0) < ($1.firstClaim ?? 0) }!.model
        let store = instances[0].store
        let stored = try await read(store, model: served)
        for (github, truth) in repos {
            guard let repo = stored[github] else { throw fail("repo \(truth.key) is gone from the store") }
            if truth.rejected {
                if repo.state != .failed || repo.lastError == nil {
                    throw fail("\(repo.repo.id) has a rejected text but is \(repo.state), not failed with a reason")
                }
                continue
            }
            let hash = Self.hash(Self.text(truth))
            guard repo.state == .embedded, repo.embeddingModel == served, repo.embeddingHash == hash,
                  repo.embedding == Self.vector(hash: hash, model: served) else {
                throw fail("after quiescence \(repo.repo.id) is \(repo.state) with \(repo.embeddingModel ?? "no") vector "
                    + "(hash \(repo.embeddingHash ?? "none")), not \(served)'s vector of its latest text (\(hash))")
            }
        }
        let stats = try await store.stats(modelIdentity: served)
        if stats.pending != 0 || stats.leased != 0 {
            throw fail("after quiescence stats(\(served)) = \(stats): something stays pending or leased")
        }
        try await checkQuietPoint()
    }
}

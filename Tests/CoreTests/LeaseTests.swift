import EmbedStarApp
@testable import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Synchronization
import Testing

/// A store whose claims answer `delay` after the inner store committed them, whose first
/// renewal hangs past the lease, and which counts renewals.
final class SlowStore: ForwardingStore {
    let inner: any RepoStore
    let claimDelay: Duration
    let hangFirstRenewal: Bool
    let renewals = Mutex(0)

    init(_ inner: any RepoStore, claimDelay: Duration = .zero, hangFirstRenewal: Bool = false) {
        self.inner = inner
        self.claimDelay = claimDelay
        self.hangFirstRenewal = hangFirstRenewal
    }

    func claimPending(_ request: ClaimRequest) async throws -> [ClaimedRepo] {
        let claimed = try await inner.claimPending(request)
        try await Task.sleep(for: claimDelay)
        return claimed
    }

    func renew(_ ids: [RepoID], owner: String, leaseDuration: Duration) async throws -> Set<RepoID> {
        let call = renewals.withLock { $0 += 1; return $0 }
        if hangFirstRenewal, call == 1 {
            // A request on a dead connection: it ignores cancellation until its own timeout.
            let until = ContinuousClock.now + leaseDuration * 2
            while ContinuousClock.now < until { try? await Task.sleep(for: .milliseconds(50)) }
        }
        return try await inner.renew(ids, owner: owner, leaseDuration: leaseDuration)
    }
}

@Suite struct LeaseTests {
    let repos = SyntheticRepos.generate(count: 10, seed: 3)

    /// The release after a store outage ends the leases of claims not in flight; a claim the
    /// store committed whose answer is still on its way is not one of them.
    @Test func aReleaseAfterAnOutageSparesAClaimOnItsWay() async throws {
        let mock = MockStore(repos: repos)
        let store = SlowStore(mock, claimDelay: .milliseconds(300))
        let pipeline = try await pipeline(mockProvider(), store) { $0.batchSize = 10 }
        async let batch = pipeline.embedNextBatch()
        try await Task.sleep(for: .milliseconds(100))  // the claim is committed, its answer on the way
        let released = try await pipeline.releaseOrphans()
        #expect(released == 0, "the release ended leases of a claim a worker was about to embed")
        let summary = try await batch
        #expect(summary?.embedded == repos.count)
        #expect(summary?.conflicts == 0)
    }

    /// One renewal that hangs does not hold back the next: the lease is renewed again a third of
    /// a lease later, so a slow batch keeps it.
    @Test func aHungRenewalDoesNotLetTheLeaseLapse() async throws {
        let mock = MockStore(repos: Array(repos.prefix(2)))
        let store = SlowStore(mock, hangFirstRenewal: true)
        let pipeline = try await pipeline(mockProvider { $0.latencyMs = 2_500 }, store) {
            $0.batchSize = 2
            $0.leaseSeconds = 1
        }
        let summary = try await pipeline.embedNextBatch()
        #expect(summary?.embedded == 2, "the batch's leases lapsed while the first renewal hung")
        // The hung one and at least one after it (about 7 on an idle machine; a loaded one
        // schedules fewer, and the lapse above is what matters).
        #expect(store.renewals.withLock { $0 } >= 2, "no renewal after the hung one")
    }

    /// A claim that waits (another instance's sweep of a large table) keeps the liveness
    /// heartbeat going.
    @Test func aLongClaimKeepsTheHeartbeat() async throws {
        // A heartbeat every second; the bound allows a loaded machine's late wake-ups, and a
        // claim that stops it would show a gap of about 5 s.
        let store = SlowStore(MockStore(repos: repos), claimDelay: .seconds(6))
        let pipeline = try await pipeline(mockProvider(), store) { $0.parallelWorkers = 1 }
        let stop = StopSignal()
        let run = Task { try await pipeline.run(stop: stop) }
        var longest: Duration = .zero
        let until = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < until {
            try await Task.sleep(for: .milliseconds(200))
            longest = max(longest, pipeline.activity.sinceHeartbeat ?? .zero)
        }
        stop.trigger()
        _ = try await run.value
        #expect(longest < .seconds(3), "no heartbeat for \(longest) while the claim waited")
    }
}

@Suite struct InstanceIDTests {
    @Test func defaultInstanceIDsDifferPerProcessStart() {
        let ids = Set((0..<20).map { _ in Runtime.defaultInstanceID() })
        #expect(ids.count == 20, "a container restarted as pid 1 under one host name would share its leases")
    }
}

@Suite struct ClaimGateTests {
    /// Claims that follow each other never starve a release: new claims wait while it waits.
    @Test func aReleaseGetsThroughClaimsThatFollowEachOther() async throws {
        let gate = ClaimGate()
        let claimsAfterRelease = Box(0), released = Box(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    let end = ContinuousClock.now + .seconds(2)
                    while ContinuousClock.now < end {
                        try await gate.claim { try await Task.sleep(for: .milliseconds(20)) }
                        if released.value { claimsAfterRelease.update { $0 += 1 } }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(100))
                try await gate.release { released.update { $0 = true } }
            }
            try await group.waitForAll()
        }
        #expect(released.value)
        #expect(claimsAfterRelease.value > 10, "the release ran only once the claims stopped")
    }

    /// A release waiting behind a claim stops waiting when cancelled, and claims go on.
    @Test func aCancelledWaitLeavesTheGateOpen() async throws {
        let gate = ClaimGate()
        // The claim holds the gate until the test lets it go, however slowly tasks start.
        let (letGo, finish) = AsyncStream.makeStream(of: Void.self)
        let inside = Box(false)
        let holding = Task { try await gate.claim { inside.update { $0 = true }; for await _ in letGo {} } }
        #expect(try await waitUntil(timeout: .seconds(30)) { inside.value }, "the claim holds the gate")
        let waiting = Task { try await gate.release { 1 } }
        #expect(try await waitUntil(timeout: .seconds(30)) { gate.releasesWaiting == 1 }, "the release waits behind the claim")
        waiting.cancel()
        // A cancel that no longer ends the wait fails the check below (the claim lets go after
        // 10 s and the release gets in), not hangs the run.
        let backstop = Task { try? await Task.sleep(for: .seconds(10)); finish.finish() }
        await #expect(throws: CancellationError.self) { try await waiting.value }
        backstop.cancel()
        finish.finish()
        try await holding.value
        #expect(try await gate.claim { 7 } == 7)
    }
}

/// A value shared by a test's tasks.
final class Box<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    func update(_ change: (inout Value) -> Void) { state.withLock { change(&$0) } }
}

import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
import EmbedStarTesting
import Foundation
import Logging
import Testing

/// The provider account's limits shared by several instances (``FleetRateLimit``), on simulated
/// time: each instance's budget, the store's ledger, exchanges once a second.
@Suite struct FleetRateLimitTests {
    /// Instances of one account, each sending whenever its part of the budget allows (checked
    /// every 50 ms) and exchanging with the ledger once a second, joining and leaving at the
    /// given times (seconds). Returns when each request was sent, per instance.
    static func simulate(limit: Int, instances: [(join: Double, leave: Double)], seconds: Int,
                         pause: (at: Double, by: Int, for: Double)? = nil) -> [[Double]] {
        var ledger = RateLimitLedger()
        let origin = Date(timeIntervalSince1970: 1_800_000_000)
        var budgets: [RateLimitBudget?] = Array(repeating: nil, count: instances.count)
        var sent: [[Double]] = Array(repeating: [], count: instances.count)
        for step in 0..<(seconds * 20) {
            let t = Double(step) / 20
            let now = Duration.milliseconds(step * 50)
            for (i, life) in instances.enumerated() {
                func report(active: Bool, pausedFor: Duration = .zero) -> RateLimitShare {
                    ledger.record(RateLimitReport(account: "a", owner: "\(i)", active: active, activeFor: .seconds(10), pausedFor: pausedFor),
                                  now: origin.addingTimeInterval(t))
                }
                if t >= life.leave {
                    if budgets[i] != nil { _ = report(active: false) }  // leaving: idle at once
                    budgets[i] = nil
                    continue
                }
                guard t >= life.join else { continue }
                if budgets[i] == nil {
                    // FleetRateLimit.join: counted in before sending, nothing banked when others send.
                    var budget = RateLimitBudget(requestsPerMinute: limit, tokensPerMinute: nil, now: now)
                    let share = report(active: true)
                    budget.share(among: share.others + 1, now: now)
                    if share.others > 0 { budget.drain(now: now) }
                    budgets[i] = budget
                }
                if let pause, pause.by == i, step == Int(pause.at * 20) {
                    budgets[i]!.pause(for: .seconds(pause.for), now: now)
                }
                if step % 20 == i % 20 {
                    // Its own pause only: one taken from the others is not reported back.
                    let paused = max(.zero, budgets[i]!.ownPausedUntil - now)
                    let share = report(active: true, pausedFor: paused)
                    budgets[i]!.share(among: share.others + 1, now: now)
                    if share.pausedFor > .zero { budgets[i]!.followFleetPause(for: share.pausedFor, now: now) }
                }
                while budgets[i]!.pausedUntil <= now, budgets[i]!.take(upTo: 1, now: now) == 1 { sent[i].append(t) }
            }
        }
        return sent
    }

    static func count(_ sent: [[Double]], from: Double, to: Double) -> Int {
        sent.joined().filter { $0 >= from && $0 < to }.count
    }

    @Test func threeInstancesSendTheAccountsLimitBetweenThem() {
        // 600 a minute for the account; instances join at 0 s, 20 s and 40 s.
        let sent = Self.simulate(limit: 600, instances: [(0, .infinity), (20, .infinity), (40, .infinity)], seconds: 240)
        for minute in 1..<4 {
            let total = Self.count(sent, from: Double(minute * 60), to: Double(minute * 60 + 60))
            #expect(abs(total - 600) <= 60, "minute \(minute): \(total) requests for a limit of 600")
        }
        // Each takes a third once all three run.
        for (i, times) in sent.enumerated() {
            let mine = times.filter { $0 >= 120 && $0 < 240 }.count
            #expect(abs(mine - 400) <= 40, "instance \(i) sent \(mine) in two minutes, a third of 1,200 is 400")
        }
        // Without sharing, three instances would have sent three times the limit: the check can fail.
        #expect(Self.count(sent, from: 20, to: 80) <= 660, "the joining instances add no burst")
    }

    @Test func anInstanceThatLeavesGivesItsPartToTheOthers() {
        let sent = Self.simulate(limit: 600, instances: [(0, .infinity), (0, 100)], seconds: 240)
        let late = Self.count([sent[0]], from: 120, to: 240)
        #expect(abs(late - 1_200) <= 120, "alone again, the first sends the whole limit: \(late) in two minutes")
        let together = Self.count(sent, from: 60, to: 100)
        #expect(abs(together - 400) <= 40, "two instances send 600 a minute between them: \(together) in 40 s")
    }

    @Test func aRetryAfterOneInstanceGotHoldsEveryInstance() {
        let sent = Self.simulate(limit: 600, instances: [(0, .infinity), (0, .infinity), (0, .infinity)], seconds: 120,
                                 pause: (at: 60, by: 0, for: 10))
        // Instance 0 got a 10 s retry-after at 60 s; the others hear of it within their next
        // exchange (a second) and send nothing until 70 s.
        for i in 1..<3 {
            let during = sent[i].filter { $0 >= 61.5 && $0 < 70 }.count
            #expect(during == 0, "instance \(i) sent \(during) requests during the fleet's pause")
        }
        #expect(sent[0].filter { $0 >= 60 && $0 < 70 }.isEmpty)
        #expect(sent.allSatisfy { times in times.contains { $0 >= 70 && $0 < 72 } }, "everyone sends again after the pause, not later")
    }

    /// Through the real parts: two limiters exchanging with one Mock store as the pipeline does.
    @Test func limitersShareThroughAStore() async throws {
        let store = MockStore(repos: [])
        let a = RateLimiter(requestsPerMinute: 600, tokensPerMinute: nil)
        let b = RateLimiter(requestsPerMinute: 600, tokensPerMinute: nil)
        let fleetA = FleetRateLimit(account: "p/m", owner: "a")
        let fleetB = FleetRateLimit(account: "p/m", owner: "b")
        try await fleetA.join(a, store: store)
        #expect(a.requestsPerMinute == 600)
        try await fleetB.join(b, store: store)
        #expect(b.requestsPerMinute == 300)
        try await fleetA.exchange(a, store: store, active: true)
        #expect(a.requestsPerMinute == 300)
        // b learns the account's limit from the headers and gets a retry-after: a follows.
        var hint = RateLimitHint(provider: "openai")
        hint.requestsLimit = 200
        b.observe(hint)
        b.pause(for: .seconds(30))
        try await fleetB.exchange(b, store: store, active: true)
        try await fleetA.exchange(a, store: store, active: true)
        #expect(a.requestsPerMinute == 100, "the account's 200 a minute, halved")
        #expect(a.pausedFor > .seconds(25))
        #expect(a.report(account: "p/m", owner: "a", activeFor: .seconds(10)).pausedFor == .zero,
                "a pause taken from the fleet is not reported back (it would come back later each time)")
        // The account's limit rises: the headers say so later, and the higher limit is taken.
        hint.requestsLimit = 400
        b.observe(hint)
        try await fleetB.exchange(b, store: store, active: true)
        try await fleetA.exchange(a, store: store, active: true)
        #expect(a.requestsPerMinute == 200 && b.requestsPerMinute == 200, "learned limits follow the headers up as well as down")
        // b leaves: a takes the whole account again.
        try await fleetB.exchange(b, store: store, active: false)
        try await fleetA.exchange(a, store: store)
        #expect(a.requestsPerMinute == 400)
    }
}

import ArgumentParser
import EmbedStarApp
import EmbedStarCore
import Foundation

/// Measures what a claim and a stats call cost on the configured store (for bench/ scripts).
struct BenchClaimsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claims",
        abstract: "Measure claim and stats latency on the configured store (claims are released again)."
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "Measurements of each kind.")
    var samples = 30

    @Option(name: .long, help: "Repos per claim.")
    var limit = 50

    func run() async throws {
        let result = try await options.withRuntime { runtime in
            let store = runtime.store
            try await store.prepare()
            let model = try await runtime.modelIdentity()
            let owner = "bench-\(UUID().uuidString.prefix(8))"
            _ = try await store.stats(modelIdentity: model)  // the one-time queue check is not a claim's cost
            var claims: [Double] = []
            var stats: [Double] = []
            var claimed = 0
            for _ in 0..<samples {
                var started = ContinuousClock.now
                let batch = try await store.claimPending(ClaimRequest(owner: owner, limit: limit, leaseDuration: .seconds(60), modelIdentity: model))
                claims.append((ContinuousClock.now - started).seconds * 1000)
                claimed = batch.count
                try await store.release(batch.map(\.repo.id), owner: owner)
                started = ContinuousClock.now
                _ = try await store.stats(modelIdentity: model)
                stats.append((ContinuousClock.now - started).seconds * 1000)
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            return [
                "claim_ms_median": median(claims), "claim_ms_min": claims.min() ?? 0, "claim_ms_max": claims.max() ?? 0,
                "stats_ms_median": median(stats), "stats_ms_min": stats.min() ?? 0, "stats_ms_max": stats.max() ?? 0,
                "claimed": Double(claimed),
            ] as [String: Double]
        }
        try printFigures(result)
    }
}

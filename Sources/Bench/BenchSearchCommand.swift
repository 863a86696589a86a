import ArgumentParser
import EmbedStarApp
import EmbedStarCore
import EmbedStarSQLiteStore
import Foundation

/// Measures what a search costs on the configured store, without the query's embedding (for bench/ scripts).
struct BenchSearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Measure nearest-neighbour latency on the configured store with random query vectors."
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "Searches to time.")
    var samples = 20

    @Option(name: .long, help: "Hits per search.")
    var limit = 10

    @Option(name: .long, help: "Also time searches restricted to this language.")
    var language: String?

    func run() async throws {
        let result = try await options.withRuntime { runtime in
            let store = runtime.store
            try await store.prepare()
            guard let dimensions = try await runtime.provider.prepare().dimensions else {
                throw ValidationError("the provider does not say its dimensions; pick one that does (mock, local)")
            }
            var random = SeededRandom(seed: 11)
            func query() -> [Float] { (0..<dimensions).map { _ in Float(random.nextUnit() * 2 - 1) } }
            func time(_ filter: SearchFilter) async throws -> (median: Double, min: Double, max: Double, hits: Int) {
                _ = try await store.nearest(to: query(), limit: limit, filter: filter)  // warm the page cache
                var times: [Double] = []
                var hits = 0
                for _ in 0..<samples {
                    let vector = query()
                    let started = ContinuousClock.now
                    hits = try await store.nearest(to: vector, limit: limit, filter: filter).count
                    times.append((ContinuousClock.now - started).seconds * 1000)
                }
                times.sort()
                return (times[times.count / 2], times[0], times[times.count - 1], hits)
            }
            var result: [String: Double] = [:]
            let all = try await time(SearchFilter())
            result["search_ms_median"] = all.median
            result["search_ms_min"] = all.min
            result["search_ms_max"] = all.max
            result["hits"] = Double(all.hits)
            // The SQLite store scans byte codes first: its recall@10 against the exact scan over
            // the floats, and the exact scan's time, on the same queries.
            if let sqlite = store as? SQLiteStore {
                var exactTimes: [Double] = []
                var found = 0, wanted = 0
                for _ in 0..<samples {
                    let vector = query()
                    let started = ContinuousClock.now
                    let exact = try await sqlite.nearest(to: vector, limit: limit, filter: SearchFilter(), exact: true)
                    exactTimes.append((ContinuousClock.now - started).seconds * 1000)
                    let fast = try await sqlite.nearest(to: vector, limit: limit, filter: SearchFilter())
                    found += Set(exact.map(\.repo.id)).intersection(fast.map(\.repo.id)).count
                    wanted += exact.count
                }
                exactTimes.sort()
                result["exact_ms_median"] = exactTimes[exactTimes.count / 2]
                result["recall_at_limit"] = wanted == 0 ? 0 : Double(found) / Double(wanted)
            }
            if let language {
                let filtered = try await time(SearchFilter(language: language))
                result["language_ms_median"] = filtered.median
                result["language_ms_min"] = filtered.min
                result["language_ms_max"] = filtered.max
            }
            result["stored"] = Double(try await store.stats(modelIdentity: try await runtime.modelIdentity()).embedded)
            return result
        }
        try printFigures(result)
    }
}

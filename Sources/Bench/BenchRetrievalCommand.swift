import ArgumentParser
import EmbedStarApp
import EmbedStarCore
import Foundation

/// Retrieval quality of vector, lexical and hybrid search on a query set with one expected repo
/// per query (bench/retrieval writes one from Debian's package index): hit@1, hit@3, recall@10
/// and MRR per query kind, per split, and for each fusion setting tried; the setting is chosen
/// on the `tune` split and reported on `heldout`.
struct BenchRetrievalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Measure search quality on queries with known answers (JSON: kind, query, expect, split)."
    )

    @OptionGroup var options: BenchOptions

    @Option(name: .long, help: "The query file.")
    var queries: String

    @Option(name: .long, help: "At most this many queries of each kind and split (seeded sample; 0: all).")
    var perKind = 300

    struct Query: Decodable {
        var kind: String
        var query: String
        var expect: String
        var split: String
    }

    /// The rank (1-based) of the expected repo in each query's answer, per method.
    struct Ranks {
        var ranks: [String: [Int?]] = [:]
    }

    func run() async throws {
        let all = try JSONDecoder().decode([Query].self, from: Data(contentsOf: URL(fileURLWithPath: queries)))
        var random = SeededRandom(seed: 7)
        var sample: [Query] = []
        for group in Dictionary(grouping: all, by: { "\($0.kind)|\($0.split)" }).sorted(by: { $0.key < $1.key }) {
            var items = group.value
            if perKind > 0 && items.count > perKind {
                for index in stride(from: items.count - 1, to: 0, by: -1) {
                    items.swapAt(index, Int(random.next() % UInt64(index + 1)))
                }
                items = Array(items.prefix(perKind))
            }
            sample += items
        }
        let settings: [HybridSearch.Fusion] = [2.0, 5, 10, 30, 60, 120].flatMap { k in  // .standard among them
            [1.0, 2].flatMap { words in
                [nil, 2.0, 4.0, 8.0, 16.0].flatMap { short in
                    [false, true].map { HybridSearch.Fusion(k: k, vectorWeight: 1, lexicalWeight: words, shortQueryLexicalWeight: short, namePartsFirst: $0) }
                }
            }
        }
        let report = try await options.withRuntime { runtime -> [String: Any] in
            let store = runtime.store
            let document = try await runtime.document()
            let filter = SearchFilter(modelIdentity: document.modelIdentity)
            let depth = HybridSearch.candidates(for: 10)
            var vectors: [[Float]] = []
            for batch in stride(from: 0, to: sample.count, by: 32).map({ Array(sample[$0..<min(sample.count, $0 + 32)]) }) {
                vectors += try await runtime.provider.embed(batch.map { document.query($0.query) }, mode: .query)
            }
            var methods: [String: [Int?]] = [:]
            // Queries the standard fusion ranks worse than the better side, to read (not scored).
            var losses: [[String: Any]] = []
            let started = ContinuousClock.now
            for (query, vector) in zip(sample, vectors) {
                let nearest = try await store.nearest(to: vector, limit: depth, filter: filter)
                let lexical = try await store.lexicalSearch(query.query, limit: depth, filter: SearchFilter())
                func rank(_ names: [String]) -> Int? { names.firstIndex { $0.lowercased() == query.expect.lowercased() }.map { $0 + 1 } }
                methods["vector", default: []].append(rank(nearest.map(\.repo.fullName)))
                methods["lexical", default: []].append(rank(lexical.map(\.repo.fullName)))
                for setting in settings {
                    let fused = HybridSearch.fuse(query: query.query, vector: nearest, lexical: lexical, limit: depth, fusion: setting)
                    let fusedRank = rank(fused.map(\.repo.fullName))
                    methods[Self.label(setting), default: []].append(fusedRank)
                    let best = [methods["vector"]!.last!, methods["lexical"]!.last!].compactMap { $0 }.min()
                    if setting == .standard, let best, (fusedRank ?? .max) > best {
                        losses.append(["split": query.split, "kind": query.kind, "query": query.query, "expect": query.expect,
                                       "hybrid": fusedRank ?? 0, "vector": methods["vector"]!.last! ?? 0, "lexical": methods["lexical"]!.last! ?? 0,
                                       "first": fused.prefix(3).map { "\($0.repo.fullName)\($0.exactName ? " (named)" : "") v\($0.vectorRank ?? 0) w\($0.lexicalRank ?? 0)" }])
                    }
                }
            }
            let seconds = (ContinuousClock.now - started).seconds
            // The fusion setting with the best MRR over every kind of the tune split.
            let tune = sample.indices.filter { sample[$0].split == "tune" }
            let chosen = settings.max { a, b in
                Self.mrr(methods[Self.label(a)]!, tune) < Self.mrr(methods[Self.label(b)]!, tune)
            }!
            var table: [[String: Any]] = []
            let kinds = Array(Set(sample.map(\.kind))).sorted() + ["all"]
            for split in ["tune", "heldout"] {
                for kind in kinds {
                    let rows = sample.indices.filter { sample[$0].split == split && (kind == "all" || sample[$0].kind == kind) }
                    // The standard without the name-part tier: what the tier alone does.
                    var untiered = HybridSearch.Fusion.standard
                    untiered.namePartsFirst = false
                    var shown = ["vector", "lexical", Self.label(.standard), Self.label(untiered)]
                    if !shown.contains(Self.label(chosen)) { shown.append(Self.label(chosen)) }
                    for method in shown {
                        let ranks = methods[method]!
                        table.append(["split": split, "kind": kind, "method": method, "queries": rows.count,
                                      "hit1": Self.hit(ranks, rows, 1), "hit3": Self.hit(ranks, rows, 3), "recall10": Self.hit(ranks, rows, 10),
                                      "mrr": Self.mrr(ranks, rows)])
                    }
                }
            }
            return ["rows": table, "losses": losses, "chosen": Self.label(chosen), "standard": Self.label(.standard), "queries": sample.count,
                    "search_seconds": seconds, "repos": try await store.stats(modelIdentity: document.modelIdentity).total]
        }
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    static func label(_ fusion: HybridSearch.Fusion) -> String {
        "hybrid(k=\(Int(fusion.k)),words=\(fusion.lexicalWeight)\(fusion.shortQueryLexicalWeight.map { ",short=\($0)" } ?? "")\(fusion.namePartsFirst ? ",parts" : ""))"
    }

    static func hit(_ ranks: [Int?], _ rows: [Int], _ depth: Int) -> Double {
        rows.isEmpty ? 0 : Double(rows.filter { (ranks[$0] ?? .max) <= depth }.count) / Double(rows.count)
    }

    static func mrr(_ ranks: [Int?], _ rows: [Int]) -> Double {
        rows.isEmpty ? 0 : rows.reduce(0.0) { $0 + (ranks[$1].map { 1 / Double($0) } ?? 0) } / Double(rows.count)
    }
}

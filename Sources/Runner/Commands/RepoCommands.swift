import EmbedStarApp
import ArgumentParser
import EmbedStarCore
import EmbedStarReport
import Foundation

/// `embed-star migrate`: the one command besides `run` and `backfill` that changes the schema.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Bring the database's schema up to this binary's (run and backfill do it too; other commands never do).",
        discussion: "Safe to run while older instances run: migrations are additive and each is applied once, in a transaction."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Only say whether a migration is needed (exit 1 when it is); change nothing.")
    var check = false

    func run() async throws {
        try await runCommand { logger in
            let (before, after) = try await options.withRuntime(logger: logger) { runtime in
                let before = try await runtime.store.openForReading()
                guard !check else { return (before, before) }
                try await runtime.store.prepare()
                return (before, try await runtime.store.openForReading())
            }
            if check {
                if before.version < before.required {
                    print("The database is at schema \(before.version); this binary needs \(before.required): `embed-star migrate` would migrate it.")
                    throw ExitCode(1)
                }
                print("The database is at schema \(before.version); this binary needs \(before.required): nothing to migrate.")
                return
            }
            if after.version == before.version {
                print("The database is at schema \(after.version); nothing to migrate.")
            } else {
                print("Migrated the database from schema \(before.version) to \(after.version).")
            }
        }
    }
}

/// `embed-star inspect REPO`: everything stored about one repo, to answer "why has it no vector?".
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show one repo's state: model, dimensions, text hash and whether the text still matches it, attempts, last error, lease.",
        discussion: "REPO is a record id (repo:123) or owner/name (case ignored). Reads only."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "A record id (repo:123) or owner/name.")
    var repo: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    struct Inspection: Encodable {
        var id: String
        var fullName: String
        /// embedded, pending or failed, for `model`.
        var state: String
        /// The model identity the state is for (the one the store serves).
        var model: String?
        var vectorModel: String?
        var dimensions: Int?
        var textHash: String?
        /// Whether the repo's current text, as the configured model would embed it, hashes to
        /// `textHash`; nil when it could not be computed (the provider did not answer).
        var textMatches: Bool?
        var embeddedAt: Date?
        var attempts: Int
        var lastError: String?
        var queuedSince: Date?
        var leaseHolder: String?
        var leaseExpires: Date?
        var note: String?

        enum CodingKeys: String, CodingKey {
            case id, fullName = "full_name", state, model, vectorModel = "vector_model", dimensions, textHash = "text_hash"
            case textMatches = "text_matches", embeddedAt = "embedded_at", attempts, lastError = "last_error"
            case queuedSince = "queued_since", leaseHolder = "lease_holder", leaseExpires = "lease_expires", note
        }
    }

    func run() async throws {
        try await runCommand { logger in
            let found = try await options.withRuntime(logger: logger) { runtime -> [Inspection] in
                let schema = try await runtime.openStore()
                // The provider is asked once (at most 5 s): the model's identity, and its texts
                // to compare the current text's hash with the stored one.
                let (model, document) = runtime.statusModel(schema, asked: await runtime.askDocument())
                let repos = try await runtime.store.find(repo, modelIdentity: model.identity ?? "")
                guard !repos.isEmpty else { return [] }
                return repos.map { stored in
                    var matches: Bool?
                    if let document, let hash = stored.embeddingHash, stored.embeddingModel == document.modelIdentity {
                        matches = document.hash(document.text(for: stored.repo)) == hash
                    }
                    return Inspection(
                        id: stored.repo.id.rawValue, fullName: stored.repo.fullName, state: stored.state.rawValue, model: model.identity,
                        vectorModel: stored.embedding == nil ? nil : stored.embeddingModel, dimensions: stored.embedding?.count,
                        textHash: stored.embeddingHash, textMatches: matches, embeddedAt: stored.embeddingGeneratedAt,
                        attempts: stored.attempts, lastError: stored.lastError, queuedSince: stored.pendingSince,
                        leaseHolder: stored.leaseOwner, leaseExpires: stored.leaseExpires,
                        note: document == nil && stored.embeddingHash != nil ? "the provider did not answer: the text could not be compared" : nil)
                }
            }
            guard !found.isEmpty else { throw CLIError.failure("no repo \(repo) in the store (give a record id such as repo:123, or owner/name)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(found), as: UTF8.self))
                return
            }
            for (index, item) in found.enumerated() {
                if index > 0 { print("") }
                print(Self.render(item))
            }
        }
    }

    static func render(_ item: Inspection, now: Date = Date()) -> String {
        func age(_ date: Date) -> String {
            let seconds = Int(now.timeIntervalSince(date)), span = abs(seconds)
            let text = span < 120 ? "\(span) s" : span < 7_200 ? "\(span / 60) min" : span < 172_800 ? "\(span / 3_600) h" : "\(span / 86_400) days"
            return seconds >= 0 ? "\(text) ago" : "in \(text)"
        }
        let stamp = ISO8601DateFormatter()
        var lines = [
            "repo:        \(item.fullName) (\(item.id))",
            "state:       \(item.state)\(item.model.map { " for \($0)" } ?? "")",
        ]
        if let vectorModel = item.vectorModel {
            lines.append("vector:      \(vectorModel), \(item.dimensions ?? 0) dimensions\(item.embeddedAt.map { ", written \(stamp.string(from: $0)) (\(age($0)))" } ?? "")")
        } else {
            lines.append("vector:      none")
        }
        if let hash = item.textHash {
            let matches = item.textMatches.map { $0 ? "the current text matches it" : "the text changed since" } ?? (item.note ?? "not compared")
            lines.append("text hash:   \(hash.prefix(16))… (\(matches))")
        }
        lines.append("attempts:    \(item.attempts)")
        if let error = item.lastError { lines.append("last error:  \(error)") }
        if let since = item.queuedSince { lines.append("queued:      \(stamp.string(from: since)) (\(age(since)))") }
        if let holder = item.leaseHolder {
            lines.append("lease:       \(holder)\(item.leaseExpires.map { " until \(stamp.string(from: $0)) (\(age($0)))" } ?? "")")
        } else {
            lines.append("lease:       none")
        }
        return lines.joined(separator: "\n")
    }
}

/// `embed-star requeue REPO...`: named repos embedded again.
struct RequeueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue",
        abstract: "Put named repos back in the queue: embedded again even if their text did not change (failed ones too).",
        discussion: "Each REPO is a record id (repo:123) or owner/name. Their current vectors stay searchable until the new ones are written."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Record ids (repo:123) or owner/name.")
    var repos: [String]

    func validate() throws {
        guard !repos.isEmpty else { throw ValidationError("name at least one repo") }
    }

    func run() async throws {
        try await runCommand { logger in
            let (queued, missing) = try await options.withRuntime(logger: logger) { runtime -> (Int, [String]) in
                _ = try await runtime.openStore()
                var ids: [RepoID] = []
                var missing: [String] = []
                for reference in repos {
                    let found = try await runtime.store.find(reference, modelIdentity: "")
                    if found.isEmpty { missing.append(reference) }
                    ids += found.map(\.repo.id)
                }
                return (try await runtime.store.requeue(ids), missing)
            }
            for reference in missing { Console.error("no repo \(reference) in the store") }
            print("\(queued) repos are pending again.")
            if !missing.isEmpty { throw ExitCode(1) }
        }
    }
}

/// `embed-star retry-failed`: failed repos back in the queue, all or those of one reason.
struct RetryFailedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry-failed",
        abstract: "Put repos marked failed back in the queue (all, or those whose reason matches --reason).",
        discussion: """
            --reason matches the failure groups of `embed-star report` (reasons with ids, numbers and quoted values \
            replaced) and the reasons themselves, ignoring case. --dry-run lists the groups it would retry and changes nothing.
            """
    )

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Only failures whose reason (or its group) contains this text.")
    var reason: String?

    @Flag(name: .long, help: "Say what would be retried; change nothing.")
    var dryRun = false

    /// Repos requeued per store call.
    static let chunk = 200

    struct Group {
        var example: String
        var ids: [RepoID] = []
        var names: [String] = []
    }

    /// The failed repos whose reason matches `reason` (all when nil), by group, largest first.
    static func failures(in store: any RepoStore, matching reason: String?) async throws -> [(reason: String, group: Group)] {
        var groups: [String: Group] = [:]
        let needle = reason?.lowercased()
        try await store.forEachPage(modelIdentity: "") { page in
            for stored in page.repos where stored.state == .failed {
                let text = stored.lastError ?? "no reason recorded"
                let key = FailureReasons.normalize(text)
                if let needle, !key.lowercased().contains(needle), !text.lowercased().contains(needle) { continue }
                groups[key, default: Group(example: text)].ids.append(stored.repo.id)
                groups[key]?.names.append(stored.repo.fullName)
            }
        }
        return groups.map { ($0.key, $0.value) }.sorted { ($0.group.ids.count, $1.reason) > ($1.group.ids.count, $0.reason) }
    }

    func run() async throws {
        try await runCommand { logger in
            let (groups, count) = try await options.withRuntime(logger: logger) { runtime -> ([(reason: String, group: Group)], Int) in
                _ = try await runtime.openStore()
                if reason == nil, !dryRun { return ([], try await runtime.store.resetFailed()) }
                let groups = try await Self.failures(in: runtime.store, matching: reason)
                guard !dryRun else { return (groups, groups.reduce(0) { $0 + $1.group.ids.count }) }
                // In chunks: one transaction per chunk, not one holding every failure.
                var count = 0
                let ids = groups.flatMap(\.group.ids)
                for start in stride(from: 0, to: ids.count, by: Self.chunk) {
                    count += try await runtime.store.requeue(Array(ids[start..<min(start + Self.chunk, ids.count)]))
                }
                return (groups, count)
            }
            for (key, group) in groups {
                let examples = group.names.prefix(3).joined(separator: ", ") + (group.names.count > 3 ? ", ..." : "")
                print("\(group.ids.count)  \(key)\n    e.g. \(examples)")
            }
            if dryRun {
                print("Would put \(count) failed repos back in the queue\(reason.map { " (reason matching '\($0)')" } ?? ""); nothing changed.")
            } else {
                print("\(count) failed repos are pending again.")
            }
        }
    }
}

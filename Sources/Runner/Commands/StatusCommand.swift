import ArgumentParser
import EmbedStarCore
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show how many repos are embedded, pending and failed."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        try await runCommand { logger in
            let (model, stats, coverage) = try await options.withRuntime(logger: logger) { runtime in
                let schema = try await runtime.openStore()
                let model = await runtime.statusModel(schema)
                return (model, try await runtime.store.stats(model: model.identity ?? ""), try await runtime.store.coverage())
            }
            if json {
                struct Report: Encodable {
                    var model: String
                    /// Where the model came from: "configuration" (the provider answered), "store"
                    /// (the provider did not; what the store last served) or "none".
                    var modelSource: String
                    var total, embedded, pending, failed, leased: Int
                    /// Repos carrying a vector, by the model identity that made it.
                    var coverage: [String: Int]

                    enum CodingKeys: String, CodingKey {
                        case model, modelSource = "model_source", total, embedded, pending, failed, leased, coverage
                    }
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let report = Report(model: model.identity ?? "", modelSource: model.source, total: stats.total, embedded: stats.embedded, pending: stats.pending,
                                    failed: stats.failed, leased: stats.leased, coverage: coverage)
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print("""
                    model:    \(model.line)
                    total:    \(stats.total)
                    embedded: \(stats.embedded)
                    pending:  \(stats.pending) (\(stats.leased) being worked on)
                    failed:   \(stats.failed)
                    """)
                // During a model change: how far each model's vectors reach.
                if coverage.keys.contains(where: { $0 != model.identity }) {
                    print("vectors by model:")
                    for (name, count) in coverage.sorted(by: { $0.value > $1.value }) {
                        let share = stats.total > 0 ? Double(count) * 100 / Double(stats.total) : 0
                        print("  \(name)\(name == model.identity ? " (current)" : ""): \(count) (\(String(format: "%.1f", share))%)")
                    }
                }
            }
        }
    }
}

/// The model `status` counts for, and where it came from.
struct StatusModel {
    var identity: String?
    var source: String
    var note: String?

    var line: String {
        guard let identity else { return "none served yet\(note.map { " (\($0))" } ?? "")" }
        return identity + (note.map { " (\($0))" } ?? "")
    }
}

extension Runtime {
    /// Opens the store for a command that does not migrate: refuses (exit 1, saying what to
    /// run) a database whose schema is behind this binary's; reads one that is ahead, saying so.
    ///
    /// With `settingUp`, a database with no embed-star schema at all (version 0: nothing of
    /// embed-star runs on it) is set up instead (`import` into a new database); one at an older
    /// schema is still refused.
    func openStore(settingUp: Bool = false) async throws -> StoreSchema {
        var schema = try await store.openForReading()
        if settingUp, schema.version == 0 {
            logger.info("setting up the embed-star schema in a new database")
            try await store.prepare()
            schema = try await store.openForReading()
        }
        do {
            try schema.check()
        } catch {
            throw CLIError.failure(error.description)
        }
        if schema.version > schema.required {
            logger.notice("the database was migrated by a newer embed-star; reading it as this one understands it", metadata: [
                "schema": "\(schema.version)", "this_binary": "\(schema.required)",
            ])
        }
        return schema
    }

    /// The model `status` counts for: the configured one, asked of the provider for at most
    /// 5 seconds; when the provider does not answer, the one the store last served (so `status`
    /// answers while the provider is down), saying so.
    func statusModel(_ schema: StoreSchema) async -> StatusModel {
        await statusModel(schema, asked: askDocument()).model
    }

    /// The provider asked for the configured model's texts, for at most 5 seconds (nil: no answer
    /// in time).
    func askDocument() async -> Result<DocumentText, any Error>? {
        await withDeadline(.seconds(5)) { () -> Result<DocumentText, any Error> in
            do { return .success(try await self.document()) } catch { return .failure(error) }
        }
    }

    /// The model to count for, from the provider's answer (`asked`) or the store; and the
    /// configured model's texts when the provider answered.
    func statusModel(_ schema: StoreSchema, asked: Result<DocumentText, any Error>?) -> (model: StatusModel, document: DocumentText?) {
        let problem: String
        switch asked {
        case .success(let document)?:
            let identity = document.modelIdentity
            let other = schema.servedModel.flatMap { $0 == identity ? nil : "configured; the store last served \($0)" }
            return (StatusModel(identity: identity, source: "configuration", note: other), document)
        case .failure(let error)?: problem = "the provider did not answer: \(error)"
        case nil: problem = "the provider did not answer within 5 s"
        }
        if let served = schema.servedModel {
            return (StatusModel(identity: served, source: "store", note: "the model the store last served; \(problem)"), nil)
        }
        return (StatusModel(source: "none", note: problem), nil)
    }
}

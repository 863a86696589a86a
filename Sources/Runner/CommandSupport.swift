import EmbedStarApp
import ArgumentParser
import EmbedStarConfig
import EmbedStarCore
import Foundation
import Logging

/// How the process ends on an error: configuration problems exit 2, everything else 1.
enum CLIError: Error, CustomStringConvertible {
    case configuration(ConfigError)
    case failure(String)

    var description: String {
        switch self {
        case .configuration(let error): "configuration error: \(error)"
        case .failure(let message): message
        }
    }

    var exitCode: ExitCode {
        switch self {
        case .configuration: ExitCode(2)
        case .failure: ExitCode(1)
        }
    }
}

enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("note: \(message)\n".utf8))
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// Bootstraps logging once, runs `body`, and turns errors into messages and exit codes.
func runCommand(_ body: (Logger) async throws -> Void) async throws {
    let environment = ProcessInfo.processInfo.environment
    let level = LogLevelSpec.fromEnvironment(environment)
    // LOG_FORMAT=json: one JSON object per line; anything else: key=value text.
    let json = environment["LOG_FORMAT"]?.lowercased() == "json"
    LoggingSystem.bootstrap { label in
        if json { return JSONLogHandler(label: label, level: level) }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "embed-star")
    do {
        try await body(logger)
    } catch let error as CLIError {
        Console.error(error.description)
        throw error.exitCode
    } catch let error as ConfigError {
        Console.error("configuration error: \(error)")
        throw ExitCode(2)
    } catch let error as ExitCode {
        throw error
    } catch {
        Console.error("\(error)")
        throw ExitCode(1)
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
            let other = schema.servedModelIdentity.flatMap { $0 == identity ? nil : "configured; the store last served \($0)" }
            return (StatusModel(identity: identity, source: "configuration", note: other), document)
        case .failure(let error)?: problem = "the provider did not answer: \(error)"
        case nil: problem = "the provider did not answer within 5 s"
        }
        if let served = schema.servedModelIdentity {
            return (StatusModel(identity: served, source: "store", note: "the model the store last served; \(problem)"), nil)
        }
        return (StatusModel(source: "none", note: problem), nil)
    }
}

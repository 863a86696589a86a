import ArgumentParser
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

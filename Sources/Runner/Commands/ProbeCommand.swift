import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `embed-star probe livez`: asks the local monitoring server, for container health checks
/// (the runtime image has no curl).
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Ask the local monitoring server (livez, readyz or health); exit 0 when it answers 200."
    )

    @Argument(help: "livez, readyz or health.")
    var endpoint = "livez"

    @Option(name: .long, help: "The monitoring port (default: $MONITORING_PORT or 9090).")
    var port: Int?

    func validate() throws {
        guard ["livez", "readyz", "health"].contains(endpoint) else { throw ValidationError("endpoint must be livez, readyz or health") }
    }

    func run() async throws {
        let port = port ?? ProcessInfo.processInfo.environment["MONITORING_PORT"].flatMap(Int.init) ?? 9090
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/\(endpoint)")
        request.method = .GET
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(3))
            guard response.status.code == 200 else {
                FileHandle.standardError.write(Data("\(endpoint): HTTP \(response.status.code)\n".utf8))
                throw ExitCode(1)
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("\(endpoint): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

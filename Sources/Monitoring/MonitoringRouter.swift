import EmbedStarConfig
import EmbedStarCore
import Foundation
import Hummingbird
import NIOCore

/// The monitoring endpoints: `/livez`, `/readyz`, `/health`, `/metrics`.
public enum MonitoringRouter {
    public static func make(_ state: MonitoringState) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/livez") { _, _ -> Response in
            state.isLive ? text(.ok, "ok\n") : text(.serviceUnavailable, "workers stuck\n")
        }
        router.get("/readyz") { _, _ -> Response in
            guard state.model != nil else { return text(.serviceUnavailable, "starting\n") }
            let store = await state.storeHealth()
            return store.status == .down ? text(.serviceUnavailable, "store unavailable\n") : text(.ok, "ready\n")
        }
        router.get("/health") { _, _ -> Response in
            let report = await HealthReport.make(state)
            let body = try JSONEncoder.sorted.encode(report)
            var response = Response(status: report.status == "down" ? .serviceUnavailable : .ok,
                                    body: .init(byteBuffer: ByteBuffer(bytes: body)))
            response.headers[.contentType] = "application/json"
            return response
        }
        router.get("/metrics") { _, _ -> Response in
            let text = MetricHelp.annotate(state.registry.emitToString(), help: state.metricHelp)
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: text)))
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
        return router
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var response = Response(status: status, body: .init(byteBuffer: ByteBuffer(string: body)))
        response.headers[.contentType] = "text/plain; charset=utf-8"
        return response
    }
}

/// `/health` as JSON. Built from names, states and counts only: no URL, key or password.
struct HealthReport: Encodable {
    struct Component: Encodable {
        var name: String
        var status: String
        var latencyMs: Double?
        var detail: String?
        var model: String?
        var circuit: String?
    }

    /// The store's lexical search: `state`, the repos whose words it holds, changes waiting.
    struct Lexical: Encodable {
        var state: String
        var indexed: Int?
        var waiting: Int?
        var detail: String?
    }

    var status: String
    var version: String
    var instance: String
    var store: Component
    var provider: Component
    var pending: Int?
    var failed: Int?
    /// Read with the counts, about once a minute; nil until first read.
    var lexical: Lexical?
    var workers: Int
    var workersBusy: Int
    var live: Bool
    var lastSuccessfulWrite: String?

    static func make(_ state: MonitoringState) async -> HealthReport {
        async let storeHealth = state.storeHealth()
        async let providerHealth = state.providerHealth()
        let (store, provider) = await (storeHealth, providerHealth)
        let activity = state.activity.snapshot
        let stats = state.lastStats
        let circuitClosed = state.components.breaker.map { $0.current == .closed } ?? true
        let overall = store.status == .down ? "down"
            : state.model == nil ? "starting"
            : (provider.status == .up && circuitClosed && state.isLive ? "up" : "degraded")
        return HealthReport(
            status: overall,
            version: state.version,
            instance: state.components.instanceID,
            store: Component(name: state.components.storeName, status: store.status.rawValue, latencyMs: store.latency.map { $0.seconds * 1000 },
                             detail: store.detail.map(redact)),
            provider: Component(name: state.components.providerName, status: provider.status.rawValue,
                                latencyMs: provider.latency.map { $0.seconds * 1000 }, detail: provider.detail.map(redact),
                                model: state.model, circuit: state.components.breaker?.current.name ?? "closed"),
            pending: stats?.pending, failed: stats?.failed,
            lexical: state.lastLexical.map { Lexical(state: $0.state.rawValue, indexed: $0.indexed, waiting: $0.waiting, detail: $0.detail.map(redact)) },
            workers: activity.workers, workersBusy: activity.busyWorkers, live: state.isLive,
            lastSuccessfulWrite: activity.lastSuccessfulWrite.map { $0.formatted(.iso8601) })
    }

    /// Details come from error messages: keep them short and strip URL credentials.
    static func redact(_ text: String) -> String {
        var words = ConfigRendering.redactURLPasswords(in: text).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if words.count > 40 { words = Array(words.prefix(40)) + ["..."] }
        return words.joined(separator: " ")
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }
}

import EmbedStarCore
import Foundation
import SurrealClient

extension SurrealValue {
    /// JSON as SurrealDB values (null becomes NONE: the field is left out).
    public init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .array(let items): self = .array(items.map(SurrealValue.init(json:)))
        case .object(let fields): self = .object(fields.mapValues(SurrealValue.init(json:)))
        }
    }

    /// The value as JSON, for reading records leniently: record ids become `table:key`,
    /// datetimes ISO 8601 text.
    var json: JSONValue {
        switch self {
        case .none, .null: return .null
        case .bool(let value): return .bool(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .string(let value): return .string(value)
        case .bytes: return .null
        case .array(let items): return .array(items.map(\.json))
        case .object(let fields): return .object(fields.mapValues(\.json))
        case .floats(let values): return .array(values.map { .double(Double($0)) })
        case .table(let name): return .string(name)
        case .recordID(let id): return .string(id.plainDescription)
        case .uuid(let uuid): return .string(uuid.uuidString.lowercased())
        case .decimal(let text): return Double(text).map(JSONValue.double) ?? .string(text)
        case .datetime(let time): return .string(time.date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        case .duration(let duration): return .int(Int64(duration.seconds))
        case .tagged(_, let inner): return inner.json
        }
    }
}

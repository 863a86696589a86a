import Foundation

/// A SurrealDB value as it travels in CBOR: plain CBOR for the JSON-like part, SurrealDB's tags
/// for the rest (NONE, tables, record ids, uuids, decimals, datetimes, durations). Tags this
/// client does not model (ranges, geometries) round-trip as ``tagged(_:_:)``.
public enum SurrealValue: Sendable, Hashable {
    /// SurrealDB's NONE (tag 6): no value at all, unlike NULL.
    case none
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case array([SurrealValue])
    case object([String: SurrealValue])
    /// A vector, encoded as a CBOR array of float32: half the bytes of doubles, all a Float holds.
    case floats([Float])
    case table(String)
    indirect case recordID(RecordID)
    case uuid(UUID)
    /// A decimal, kept as its exact text.
    case decimal(String)
    case datetime(SurrealDateTime)
    case duration(SurrealDuration)
    indirect case tagged(UInt64, SurrealValue)
}

/// A record id: `table:id`, where the id is a string, an integer, an array or an object.
public struct RecordID: Sendable, Hashable, CustomStringConvertible {
    public var table: String
    public var id: SurrealValue

    public init(table: String, id: SurrealValue) {
        self.table = table
        self.id = id
    }

    public var description: String {
        switch id {
        case .int(let number): return "\(table):\(number)"
        case .string(let key):
            let plain = key.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "_" }
                && Int64(key) == nil
            return plain ? "\(table):\(key)" : "\(table):⟨\(key)⟩"
        default: return plainDescription
        }
    }
}

/// A point in time with nanoseconds, as SurrealDB keeps it.
public struct SurrealDateTime: Sendable, Hashable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        var seconds = Int64(interval.rounded(.down))
        var nanos = Int64(((interval - Double(seconds)) * 1e9).rounded())
        if nanos >= 1_000_000_000 {
            seconds += 1
            nanos -= 1_000_000_000
        }
        self.init(seconds: seconds, nanoseconds: UInt32(nanos))
    }

    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }
}

/// A length of time with nanoseconds.
public struct SurrealDuration: Sendable, Hashable {
    public var seconds: UInt64
    public var nanoseconds: UInt32

    public init(seconds: UInt64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(seconds: UInt64(max(0, seconds)), nanoseconds: UInt32(max(0, attoseconds / 1_000_000_000)))
    }
}

extension SurrealValue {
    public subscript(key: String) -> SurrealValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var int: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9e15: return Int64(value)
        default: return nil
        }
    }

    /// A number as a double (integers too).
    public var double: Double? {
        switch self {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: return nil
        }
    }

    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var array: [SurrealValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var recordID: RecordID? {
        if case .recordID(let id) = self { return id }
        return nil
    }

    /// True for NONE and NULL.
    public var isAbsent: Bool {
        switch self {
        case .none, .null: return true
        default: return false
        }
    }

    /// The values of a numeric array as Float (a stored vector), or nil if it is not one.
    public var floatArray: [Float]? {
        switch self {
        case .floats(let values): return values
        case .array(let items):
            var result = [Float]()
            result.reserveCapacity(items.count)
            for item in items {
                switch item {
                case .double(let value): result.append(Float(value))
                case .int(let value): result.append(Float(value))
                default: return nil
                }
            }
            return result
        default: return nil
        }
    }
}

extension SurrealValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: SurrealValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, SurrealValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

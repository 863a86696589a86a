import Foundation

/// CBOR (RFC 8949) with SurrealDB's tags, both ways.
public enum CBOR {
    enum Tag {
        static let datetimeString: UInt64 = 0
        static let none: UInt64 = 6
        static let table: UInt64 = 7
        static let recordID: UInt64 = 8
        static let uuidString: UInt64 = 9
        static let decimalString: UInt64 = 10
        static let datetime: UInt64 = 12
        static let durationString: UInt64 = 13
        static let duration: UInt64 = 14
        static let uuid: UInt64 = 37
    }

    public static func encode(_ value: SurrealValue) -> [UInt8] {
        var writer = Writer()
        writer.reserve(256)
        writer.write(value)
        return writer.bytes
    }

    public static func decode(_ bytes: some Collection<UInt8>) throws(CBORError) -> SurrealValue {
        var reader = Reader(Array(bytes))
        let value = try reader.value(depth: 0)
        guard reader.atEnd else { throw CBORError("\(reader.remaining) bytes after the value") }
        return value
    }
}

public struct CBORError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = "invalid CBOR: " + description
    }
}

private struct Writer {
    var bytes: [UInt8] = []

    mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }

    mutating func header(_ major: UInt8, _ value: UInt64) {
        let high = major << 5
        switch value {
        case 0..<24: bytes.append(high | UInt8(value))
        case 24...0xff: bytes.append(contentsOf: [high | 24, UInt8(value)])
        case 0x100...0xffff: bytes.append(high | 25); append(UInt16(value))
        case 0x1_0000...0xffff_ffff: bytes.append(high | 26); append(UInt32(value))
        default: bytes.append(high | 27); append(value)
        }
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func text(_ string: String) {
        let utf8 = string.utf8
        header(3, UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func int(_ value: Int64) {
        if value >= 0 { header(0, UInt64(value)) } else { header(1, UInt64(-1 - value)) }
    }

    mutating func write(_ value: SurrealValue) {
        switch value {
        case .none: header(6, CBOR.Tag.none); bytes.append(0xf6)
        case .null: bytes.append(0xf6)
        case .bool(let flag): bytes.append(flag ? 0xf5 : 0xf4)
        case .int(let number): int(number)
        case .double(let number): bytes.append(0xfb); append(number.bitPattern)
        case .string(let string): text(string)
        case .bytes(let data): header(2, UInt64(data.count)); bytes.append(contentsOf: data)
        case .array(let items):
            header(4, UInt64(items.count))
            for item in items { write(item) }
        case .object(let fields):
            header(5, UInt64(fields.count))
            for (key, item) in fields {
                text(key)
                write(item)
            }
        case .floats(let values):
            header(4, UInt64(values.count))
            // Vectors are most of every write: fill their bytes in place, not value by value.
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: values.count * 5))
            bytes.withUnsafeMutableBufferPointer { buffer in
                var offset = start
                for number in values {
                    let bits = number.bitPattern
                    buffer[offset] = 0xfa
                    buffer[offset + 1] = UInt8(truncatingIfNeeded: bits >> 24)
                    buffer[offset + 2] = UInt8(truncatingIfNeeded: bits >> 16)
                    buffer[offset + 3] = UInt8(truncatingIfNeeded: bits >> 8)
                    buffer[offset + 4] = UInt8(truncatingIfNeeded: bits)
                    offset += 5
                }
            }
        case .table(let name): header(6, CBOR.Tag.table); text(name)
        case .recordID(let id):
            header(6, CBOR.Tag.recordID)
            header(4, 2)
            text(id.table)
            write(id.id)
        case .uuid(let uuid):
            header(6, CBOR.Tag.uuid)
            header(2, 16)
            withUnsafeBytes(of: uuid.uuid) { bytes.append(contentsOf: $0) }
        case .decimal(let text): header(6, CBOR.Tag.decimalString); self.text(text)
        case .datetime(let time):
            header(6, CBOR.Tag.datetime)
            header(4, 2)
            int(time.seconds)
            header(0, UInt64(time.nanoseconds))
        case .duration(let duration):
            header(6, CBOR.Tag.duration)
            header(4, 2)
            header(0, duration.seconds)
            header(0, UInt64(duration.nanoseconds))
        case .tagged(let tag, let inner):
            header(6, tag)
            write(inner)
        }
    }
}

private struct Reader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position == bytes.count }
    var remaining: Int { bytes.count - position }

    mutating func byte() throws(CBORError) -> UInt8 {
        guard position < bytes.count else { throw CBORError("unexpected end of data") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func integer(_ count: Int) throws(CBORError) -> UInt64 {
        guard position + count <= bytes.count else { throw CBORError("unexpected end of data") }
        var value: UInt64 = 0
        for index in position..<position + count { value = value << 8 | UInt64(bytes[index]) }
        position += count
        return value
    }

    /// The argument of a header; nil for an indefinite length.
    mutating func argument(_ info: UInt8) throws(CBORError) -> UInt64? {
        switch info {
        case 0..<24: return UInt64(info)
        case 24: return try integer(1)
        case 25: return try integer(2)
        case 26: return try integer(4)
        case 27: return try integer(8)
        case 31: return nil
        default: throw CBORError("reserved additional information \(info)")
        }
    }

    mutating func length(_ info: UInt8) throws(CBORError) -> Int? {
        guard let value = try argument(info) else { return nil }
        guard value <= UInt64(remaining) else { throw CBORError("length \(value) beyond the data") }
        return Int(value)
    }

    mutating func chunk(_ count: Int) throws(CBORError) -> ArraySlice<UInt8> {
        guard position + count <= bytes.count else { throw CBORError("unexpected end of data") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    mutating func isBreak() -> Bool {
        if position < bytes.count, bytes[position] == 0xff {
            position += 1
            return true
        }
        return false
    }

    mutating func value(depth: Int) throws(CBORError) -> SurrealValue {
        guard depth < 512 else { throw CBORError("nested too deeply") }
        let initial = try byte()
        let major = initial >> 5
        let info = initial & 0x1f
        switch major {
        case 0:
            guard let value = try argument(info), value <= UInt64(Int64.max) else { throw CBORError("integer out of range") }
            return .int(Int64(value))
        case 1:
            guard let value = try argument(info), value <= UInt64(Int64.max) else { throw CBORError("integer out of range") }
            return .int(-1 - Int64(value))
        case 2:
            return .bytes(try bytesOrText(info, major: 2))
        case 3:
            let raw = try bytesOrText(info, major: 3)
            guard let text = String(validating: raw, as: UTF8.self) else { throw CBORError("text is not UTF-8") }
            return .string(text)
        case 4:
            var items: [SurrealValue] = []
            if let count = try length(info) {
                items.reserveCapacity(count)
                for _ in 0..<count { items.append(try value(depth: depth + 1)) }
            } else {
                while !isBreak() { items.append(try value(depth: depth + 1)) }
            }
            return .array(items)
        case 5:
            var fields: [String: SurrealValue] = [:]
            func entry(_ reader: inout Reader) throws(CBORError) {
                guard case .string(let key) = try reader.value(depth: depth + 1) else { throw CBORError("map key is not text") }
                fields[key] = try reader.value(depth: depth + 1)
            }
            if let count = try length(info) {
                fields.reserveCapacity(count)
                for _ in 0..<count { try entry(&self) }
            } else {
                while !isBreak() { try entry(&self) }
            }
            return .object(fields)
        case 6:
            guard let tag = try argument(info) else { throw CBORError("indefinite tag") }
            return try tagged(tag, try value(depth: depth + 1))
        default:
            switch info {
            case 20: return .bool(false)
            case 21: return .bool(true)
            case 22: return .null
            case 23: return .none
            case 25: return .double(Double(Self.half(UInt16(try integer(2)))))
            case 26: return .double(Double(Float(bitPattern: UInt32(try integer(4)))))
            case 27: return .double(Double(bitPattern: try integer(8)))
            default: throw CBORError("unsupported simple value \(info)")
            }
        }
    }

    mutating func bytesOrText(_ info: UInt8, major: UInt8) throws(CBORError) -> [UInt8] {
        if let count = try length(info) { return Array(try chunk(count)) }
        var result: [UInt8] = []
        while !isBreak() {
            let initial = try byte()
            guard initial >> 5 == major, let count = try length(initial & 0x1f) else { throw CBORError("bad indefinite-length chunk") }
            result.append(contentsOf: try chunk(count))
        }
        return result
    }

    func tagged(_ tag: UInt64, _ inner: SurrealValue) throws(CBORError) -> SurrealValue {
        switch (tag, inner) {
        case (CBOR.Tag.none, _): return .none
        case (CBOR.Tag.table, .string(let name)): return .table(name)
        case (CBOR.Tag.recordID, .array(let parts)) where parts.count == 2:
            guard case .string(let table) = parts[0] else { throw CBORError("record id table is not text") }
            return .recordID(RecordID(table: table, id: parts[1]))
        case (CBOR.Tag.recordID, .string(let text)):
            guard let id = RecordID(parsing: text) else { throw CBORError("bad record id '\(text)'") }
            return .recordID(id)
        case (CBOR.Tag.uuid, .bytes(let raw)) where raw.count == 16:
            return .uuid(UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                                     raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15])))
        case (CBOR.Tag.uuidString, .string(let text)):
            guard let uuid = UUID(uuidString: text) else { throw CBORError("bad uuid '\(text)'") }
            return .uuid(uuid)
        case (CBOR.Tag.decimalString, .string(let text)): return .decimal(text)
        case (CBOR.Tag.datetime, .array(let parts)) where !parts.isEmpty && parts.count <= 2:
            guard let seconds = parts[0].int else { throw CBORError("bad datetime") }
            let nanos = parts.count == 2 ? parts[1].int ?? 0 : 0
            return .datetime(SurrealDateTime(seconds: seconds, nanoseconds: UInt32(clamping: nanos)))
        case (CBOR.Tag.datetimeString, .string(let text)):
            guard let date = Self.parseDate(text) else { throw CBORError("bad datetime '\(text)'") }
            return .datetime(date)
        case (CBOR.Tag.duration, .array(let parts)) where parts.count <= 2:
            let seconds = parts.first?.int ?? 0
            let nanos = parts.count == 2 ? parts[1].int ?? 0 : 0
            return .duration(SurrealDuration(seconds: UInt64(max(0, seconds)), nanoseconds: UInt32(clamping: nanos)))
        default:
            return .tagged(tag, inner)
        }
    }

    static func parseDate(_ text: String) -> SurrealDateTime? {
        // RFC 3339 with up to nanoseconds: keep the fraction exactly.
        var main = text
        var nanos: UInt32 = 0
        if let dot = text.firstIndex(of: ".") {
            let fractionEnd = text[dot...].firstIndex { $0 == "Z" || $0 == "+" || $0 == "-" } ?? text.endIndex
            let digits = text[text.index(after: dot)..<fractionEnd].prefix(9)
            nanos = UInt32(digits.padding(toLength: 9, withPad: "0", startingAt: 0)) ?? 0
            main = String(text[..<dot]) + String(text[fractionEnd...])
        }
        guard let date = try? Date(main, strategy: .iso8601) else { return nil }
        return SurrealDateTime(seconds: Int64(date.timeIntervalSince1970.rounded(.down)), nanoseconds: nanos)
    }

    static func half(_ bits: UInt16) -> Float {
        let sign: Float = bits & 0x8000 == 0 ? 1 : -1
        let exponent = Int((bits >> 10) & 0x1f)
        let mantissa = Float(bits & 0x3ff)
        switch exponent {
        case 0: return sign * mantissa * pow(2, -24)
        case 31: return mantissa == 0 ? sign * .infinity : .nan
        default: return sign * (1 + mantissa / 1024) * pow(2, Float(exponent - 15))
        }
    }
}

import Foundation

/// Record ids as text that reads back exactly: every key kind SurrealDB keeps (integers,
/// strings, uuids, arrays, objects, and anything else as its CBOR) maps to one text, and
/// ``RecordID/init(parsing:)`` gives back the same key. A string key that looks like a number is
/// never read back as the number.
///
/// The forms, after `table:`:
/// - an integer: `123`;
/// - a string: as it is when it is made of letters, digits, `_`, `-` and `.` and is not a
///   number (`my-project`), else between `⟨` and `⟩` (`⟨123⟩`, `⟨a b⟩`);
/// - a uuid: `u'…'` (lowercase);
/// - an array or an object: `[…]` / `{…}` of values written `123`, `1.5f`, `'text'` (with `\'`
///   and `\\`), `u'…'`, `true`, `false`, `NULL`, `NONE`, nested arrays and objects (object keys
///   in order, quoted unless made of letters, digits and `_`);
/// - any other value, or a value inside an array or object that has no form above (a datetime, a
///   decimal, a nested record id, …): `cbor'…'`, its CBOR in hex.
extension RecordID {
    /// The id as text that ``init(parsing:)`` reads back exactly; how embed-star names repos.
    public var plainDescription: String { "\(table):\(Self.text(ofKey: id))" }

    /// Reads `table:key` as ``plainDescription`` writes it (any other key text is a string key);
    /// nil without a table or a key.
    public init?(parsing text: String) {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return nil }
        let key = String(text[text.index(after: colon)...])
        guard let value = Self.key(parsing: key) else { return nil }
        self.init(table: String(text[..<colon]), id: value)
    }

    static func text(ofKey key: SurrealValue) -> String {
        switch key {
        case .int(let number): return "\(number)"
        case .string(let text): return isPlain(text) ? text : "⟨\(text)⟩"
        case .uuid(let uuid): return "u'\(uuid.uuidString.lowercased())'"
        case .array, .object: return literal(key) ?? cbor(key)
        default: return cbor(key)
        }
    }

    static func key(parsing text: String) -> SurrealValue? {
        guard !text.isEmpty else { return nil }
        if text.hasPrefix("⟨"), text.hasSuffix("⟩"), text.count >= 2 { return .string(String(text.dropFirst().dropLast())) }
        if let number = Int64(text) { return .int(number) }
        if isPlain(text) { return .string(text) }
        var reader = LiteralReader(Array(text.unicodeScalars))
        if let value = reader.value(), reader.atEnd {
            switch value {
            case .uuid, .array, .object, .tagged, .datetime, .decimal, .duration, .bytes, .recordID, .table, .double, .bool, .null, .none: return value
            default: break
            }
        }
        // Text no form above writes (`owner/name`, `a b` from a hand-written id): a string key,
        // as before. ``text(ofKey:)`` never writes a string so, so reading stays exact.
        return .string(text)
    }

    /// Letters, digits, `_`, `-` and `.`, and not a number: written without brackets.
    static func isPlain(_ text: String) -> Bool {
        !text.isEmpty && Int64(text) == nil && Double(text) == nil
            && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
    }

    static func cbor(_ value: SurrealValue) -> String {
        "cbor'" + CBOR.encode(value).map { String(format: "%02x", $0) }.joined() + "'"
    }

    /// An array or object written as values, or nil when one of its values has no such form.
    static func literal(_ value: SurrealValue) -> String? {
        switch value {
        case .int(let number): return "\(number)"
        case .double(let number) where number.isFinite: return "\(number)f"
        case .string(let text): return "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        case .uuid(let uuid): return "u'\(uuid.uuidString.lowercased())'"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "NULL"
        case .none: return "NONE"
        case .array(let items):
            var parts: [String] = []
            for item in items {
                guard let part = literal(item) else { return nil }
                parts.append(part)
            }
            return "[\(parts.joined(separator: ", "))]"
        case .object(let fields):
            var parts: [String] = []
            for (name, field) in fields.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
                guard let part = literal(field) else { return nil }
                let plainName = !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
                parts.append("\(plainName ? name : literal(.string(name))!): \(part)")
            }
            return "{\(parts.joined(separator: ", "))}"
        default: return nil
        }
    }
}

/// Reads what ``RecordID/literal(_:)`` and ``RecordID/cbor(_:)`` write.
private struct LiteralReader {
    let scalars: [Unicode.Scalar]
    var position = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var atEnd: Bool { position == scalars.count }

    mutating func skipSpaces() {
        while position < scalars.count, scalars[position] == " " { position += 1 }
    }

    mutating func take(_ text: String) -> Bool {
        let wanted = Array(text.unicodeScalars)
        guard position + wanted.count <= scalars.count, Array(scalars[position..<(position + wanted.count)]) == wanted else { return false }
        position += wanted.count
        return true
    }

    /// A quoted text after its opening quote, up to the closing one.
    mutating func quoted() -> String? {
        var result = String.UnicodeScalarView()
        while position < scalars.count {
            let scalar = scalars[position]
            position += 1
            if scalar == "\\" {
                guard position < scalars.count else { return nil }
                result.append(scalars[position])
                position += 1
            } else if scalar == "'" {
                return String(result)
            } else {
                result.append(scalar)
            }
        }
        return nil
    }

    mutating func value() -> SurrealValue? {
        skipSpaces()
        if take("u'") { return quoted().flatMap(UUID.init(uuidString:)).map(SurrealValue.uuid) }
        if take("cbor'") {
            guard let hex = quoted(), hex.count.isMultiple(of: 2) else { return nil }
            var bytes: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
                bytes.append(byte)
                index = next
            }
            return try? CBOR.decode(bytes)
        }
        if take("'") { return quoted().map(SurrealValue.string) }
        if take("true") { return .bool(true) }
        if take("false") { return .bool(false) }
        if take("NULL") { return .null }
        if take("NONE") { return SurrealValue.none }
        if take("[") {
            var items: [SurrealValue] = []
            skipSpaces()
            if take("]") { return .array(items) }
            repeat {
                guard let item = value() else { return nil }
                items.append(item)
                skipSpaces()
            } while take(",")
            return take("]") ? .array(items) : nil
        }
        if take("{") {
            var fields: [String: SurrealValue] = [:]
            skipSpaces()
            if take("}") { return .object(fields) }
            repeat {
                skipSpaces()
                let name: String
                if take("'") {
                    guard let quotedName = quoted() else { return nil }
                    name = quotedName
                } else {
                    let start = position
                    while position < scalars.count, scalars[position].isASCII,
                          CharacterSet.alphanumerics.contains(scalars[position]) || scalars[position] == "_" { position += 1 }
                    guard position > start else { return nil }
                    name = String(String.UnicodeScalarView(scalars[start..<position]))
                }
                skipSpaces()
                guard take(":"), let field = value() else { return nil }
                fields[name] = field
                skipSpaces()
            } while take(",")
            return take("}") ? .object(fields) : nil
        }
        // A number: an integer, or a float with its `f`.
        let start = position
        while position < scalars.count, "0123456789+-.eE".unicodeScalars.contains(scalars[position]) { position += 1 }
        let number = String(String.UnicodeScalarView(scalars[start..<position]))
        if take("f") { return Double(number).map(SurrealValue.double) }
        return Int64(number).map(SurrealValue.int)
    }
}

import Foundation

/// One key a plugin's configuration type reads.
public struct ConfigKeyInfo: Sendable, Hashable {
    public var name: String
    /// `string`, `integer`, `number`, `boolean`, `list`, `section`, or the type's name.
    public var type: String
    public var required: Bool
    /// The value used when the key is absent, as YAML would spell it; nil when required or unknown.
    public var defaultValue: String?
    public var secret: Bool
}

/// What keys a configuration type reads, with types, defaults and secrets, learned from the type
/// itself (`embed-star plugins --verbose`), so documentation cannot drift from the code.
///
/// The type is decoded from a recording decoder: every key it asks for is noted, absent ones get
/// their defaults, required ones a placeholder; the defaults are then read off the decoded
/// value by property name (`maxBatchSize` for `max_batch_size`).
public enum ConfigSchema {
    public static func describe<T: Decodable>(_ type: T.Type) -> [ConfigKeyInfo] {
        var recorder = SchemaRecorder(present: [])
        var value = try? T(from: RecordingDecoder(recorder: recorder, codingPath: []))
        if value == nil {
            // Some types insist on a secret (an API key for a hosted API): give them one.
            let secrets = Set(recorder.keys.map(\.name).filter(ConfigRendering.isSecret))
            let second = SchemaRecorder(present: secrets)
            if let retried = try? T(from: RecordingDecoder(recorder: second, codingPath: [])) {
                (recorder, value) = (second, retried)
            }
        }
        var defaults: [String: (String, String)] = [:]
        if let value {
            for child in Mirror(reflecting: value).children {
                guard let label = child.label else { continue }
                defaults[normalize(label)] = describe(child.value)
            }
        }
        return recorder.keys.map { key in
            let known = defaults[normalize(key.name)]
            let type = key.type ?? known?.1 ?? "value"
            return ConfigKeyInfo(name: key.name, type: type, required: key.required,
                                 defaultValue: key.required || recorder.present.contains(key.name) ? nil : known?.0,
                                 secret: ConfigRendering.isSecret(key.name))
        }
    }

    private static func normalize(_ name: String) -> String {
        name.lowercased().filter { $0 != "_" }
    }

    /// A default as YAML would spell it, and its type.
    private static func describe(_ value: Any) -> (String, String) {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let inner = mirror.children.first?.value else { return ("none", typeName(String(describing: type(of: value)))) }
            return describe(inner)
        }
        switch value {
        case let text as String: return (text.isEmpty ? "\"\"" : text, "string")
        case let flag as Bool: return (String(flag), "boolean")
        case let number as Int: return (String(number), "integer")
        case let number as Double: return (number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number), "number")
        case let items as [String]: return (items.isEmpty ? "[]" : "[" + items.joined(separator: ", ") + "]", "list")
        case let items as [Any]: return (items.isEmpty ? "[]" : "\(items)", "list")
        default:
            if let raw = value as? any RawRepresentable { return ("\(raw.rawValue)", "string") }
            return ("\(value)", typeName("\(type(of: value))"))
        }
    }

    private static func typeName(_ swift: String) -> String {
        var name = swift
        if name.hasPrefix("Optional<"), name.hasSuffix(">") { name = String(name.dropFirst(9).dropLast()) }
        switch name {
        case "String": return "string"
        case "Int", "Int64", "Int32", "UInt64", "UInt32", "UInt": return "integer"
        case "Double", "Float": return "number"
        case "Bool": return "boolean"
        default: return name.hasPrefix("Array<") ? "list" : name.split(separator: ".").last.map(String.init) ?? name
        }
    }
}

final class SchemaRecorder {
    struct Key {
        var name: String
        var type: String?
        var required: Bool
    }

    /// Optional keys that are given a placeholder instead of being absent.
    let present: Set<String>
    private(set) var keys: [Key] = []

    init(present: Set<String>) {
        self.present = present
    }

    func name(_ path: [any CodingKey], _ key: any CodingKey) -> String {
        (path.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
    }

    func note(_ path: [any CodingKey], _ key: any CodingKey, type: String?, required: Bool) {
        let name = name(path, key)
        if let index = keys.firstIndex(where: { $0.name == name }) {
            keys[index].required = keys[index].required || required
            keys[index].type = keys[index].type ?? type
        } else {
            keys.append(Key(name: name, type: type, required: required))
        }
    }
}

private struct RecordingDecoder: Decoder {
    let recorder: SchemaRecorder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RecordingContainer<Key>(recorder: recorder, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "schema: lists are described by their key"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "schema: no single values"))
    }
}

/// Every key is "present but null", so `decodeIfPresent` falls back to the default and `decode`
/// (a required key) gets a placeholder that passes common checks.
private struct RecordingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: SchemaRecorder
    let codingPath: [any CodingKey]
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }

    func decodeNil(forKey key: Key) throws -> Bool {
        recorder.note(codingPath, key, type: nil, required: false)
        return !recorder.present.contains(recorder.name(codingPath, key))
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let placeholder: Any?
        let name: String
        switch type {
        case is String.Type: (placeholder, name) = ("http://placeholder.invalid", "string")
        case is Int.Type: (placeholder, name) = (1, "integer")
        case is Double.Type: (placeholder, name) = (1.0, "number")
        case is Bool.Type: (placeholder, name) = (false, "boolean")
        case is [String].Type: (placeholder, name) = ([String](), "list")
        default: (placeholder, name) = (nil, "\(type)")
        }
        recorder.note(codingPath, key, type: name, required: !recorder.present.contains(recorder.name(codingPath, key)))
        guard let value = placeholder as? T else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "schema: no placeholder for \(type)"))
        }
        return value
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(RecordingContainer<NestedKey>(recorder: recorder, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try RecordingDecoder(recorder: recorder, codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: recorder, codingPath: codingPath) }

    func superDecoder(forKey key: Key) throws -> any Decoder { RecordingDecoder(recorder: recorder, codingPath: codingPath + [key]) }
}

import Foundation

/// Decodes a `Decodable` configuration from a ``ConfigNode``.
///
/// Every key a type asks for (`decode`, `decodeIfPresent`, `contains`) is recorded; any other key
/// in a mapping it opened is an error with a suggestion, so a typo is never silently ignored.
/// Errors carry the file, line and dotted key path.
public struct ConfigDecoder {
    /// The folder of the configuration file being decoded: relative paths in it resolve against
    /// this (``Swift/Decoder/configurationPath(_:)``); nil: the working directory.
    public var directory: URL?

    public init(directory: URL? = nil) {
        self.directory = directory
    }

    /// Checks only that `node` holds no key its type does not declare, without decoding a value:
    /// for sections of plugins that are configured but not selected, whose values (and unset
    /// variables) do not matter now, and before decoding the selected one.
    public func checkKeys<T: PluginConfiguration>(_ type: T.Type, in node: ConfigNode, path: String) throws {
        guard node.entries != nil else { return }  // not a mapping: decoding says what is wrong
        let tracker = KeyTracker()
        tracker.open(node, path: path)
        for key in T.declaredKeys { tracker.request(key, at: path) }
        try tracker.checkUnknownKeys()
    }

    public func decode<T: Decodable>(_ type: T.Type, from node: ConfigNode, path: String) throws -> T {
        let tracker = KeyTracker()
        let decoder = NodeDecoder(node: node, path: path, tracker: tracker, directory: directory)
        let value: T
        do {
            value = try T(from: decoder)
        } catch let error as ConfigError {
            // A typo ("modle") usually causes the missing-key error that stopped decoding: say so.
            if error.message.hasPrefix(missingKeyMessage), let path = error.path { try tracker.checkUnknownKeys(at: path) }
            throw error
        } catch let error as DecodingError {
            throw tracker.translate(error, root: node, rootPath: path)
        }
        try tracker.checkUnknownKeys()
        return value
    }
}

/// A value that keeps its raw configuration subtree, for sections another component decodes
/// later (plugin sections). Decoding it accepts every key below it.
public struct RawConfig: Decodable, Sendable {
    public var node: ConfigNode

    public init(node: ConfigNode) {
        self.node = node
    }

    public init(from decoder: any Decoder) throws {
        guard let decoder = decoder as? NodeDecoder else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "RawConfig decodes from configuration only"))
        }
        node = decoder.node
    }
}

let missingKeyMessage = "missing required key"

final class KeyTracker {
    private struct Opened {
        var node: ConfigNode
        var path: String
        var requested: Set<String> = []
    }

    private var opened: [String: Opened] = [:]

    func open(_ node: ConfigNode, path: String) {
        if opened[path] == nil { opened[path] = Opened(node: node, path: path) }
    }

    func request(_ key: String, at path: String) {
        opened[path]?.requested.insert(key)
    }

    func checkUnknownKeys(at path: String? = nil) throws {
        for container in opened.values.sorted(by: { $0.path < $1.path }) where path == nil || container.path == path {
            for entry in container.node.entries ?? [] where !container.requested.contains(entry.key) {
                var message = "unknown key '\(entry.key)'"
                if let guess = closestMatch(to: entry.key, in: container.requested) {
                    message += "; did you mean '\(guess)'?"
                } else if !container.requested.isEmpty {
                    message += " (known keys: \(container.requested.sorted().joined(separator: ", ")))"
                }
                throw ConfigError(location: entry.location ?? container.node.location, path: container.path, message: message)
            }
        }
    }

    func translate(_ error: DecodingError, root: ConfigNode, rootPath: String) -> ConfigError {
        let context: DecodingError.Context
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
        @unknown default: return ConfigError(location: root.location, path: rootPath, message: "\(error)")
        }
        let path = join(rootPath, context.codingPath.map(\.stringValue))
        return ConfigError(location: root.location, path: path, message: context.debugDescription)
    }
}

func join(_ base: String, _ keys: [String]) -> String {
    keys.reduce(base) { $0.isEmpty ? $1 : ($1.hasPrefix("[") ? "\($0)\($1)" : "\($0).\($1)") }
}

struct NodeDecoder: Decoder {
    let node: ConfigNode
    let path: String
    let tracker: KeyTracker
    var directory: URL?
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { directory.map { [.configurationDirectory: $0] } ?? [:] }

    func error(_ message: String, at node: ConfigNode? = nil, path: String? = nil) -> ConfigError {
        ConfigError(location: (node ?? self.node).location, path: path ?? self.path, message: message)
    }

    func child(_ node: ConfigNode, path: String, key: any CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, path: path, tracker: tracker, directory: directory, codingPath: codingPath + [key])
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let entries = node.entries else {
            if case .null = node.value { return KeyedDecodingContainer(KeyedNodeContainer<Key>(decoder: self, entries: [])) }
            throw error("expected a mapping, got \(describe(node))")
        }
        tracker.open(node, path: path)
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(decoder: self, entries: entries))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch node.value {
        case .sequence(let items): return UnkeyedNodeContainer(decoder: self, items: items)
        case .null: return UnkeyedNodeContainer(decoder: self, items: [])
        default: throw error("expected a list, got \(describe(node))")
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleNodeContainer(decoder: self)
    }
}

func describe(_ node: ConfigNode) -> String {
    switch node.value {
    case .null: "nothing"
    case .scalar(let text, _): "'\(text)'"
    case .missingVariable(let name): "${\(name)}"
    case .mapping: "a mapping"
    case .sequence: "a list"
    }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    let entries: [ConfigEntry]
    var codingPath: [any CodingKey] { decoder.codingPath }

    var allKeys: [Key] {
        entries.compactMap { entry in
            decoder.tracker.request(entry.key, at: decoder.path)
            return Key(stringValue: entry.key)
        }
    }

    private func entry(_ key: Key) -> ConfigEntry? {
        decoder.tracker.request(key.stringValue, at: decoder.path)
        return entries.first { $0.key == key.stringValue }
    }

    private func childPath(_ key: Key) -> String {
        decoder.path.isEmpty ? key.stringValue : "\(decoder.path).\(key.stringValue)"
    }

    func contains(_ key: Key) -> Bool { entry(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let entry = entry(key) else { return true }
        if case .null = entry.value.value { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let entry = entry(key) else {
            throw decoder.error("\(missingKeyMessage) '\(key.stringValue)'")
        }
        return try T(from: decoder.child(entry.value, path: childPath(key), key: key))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        let node = entry(key)?.value ?? .emptyMapping
        return try decoder.child(node, path: childPath(key), key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let node = entry(key)?.value ?? ConfigNode(.sequence([]))
        return try decoder.child(node, path: childPath(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(entry(key)?.value ?? ConfigNode(.null), path: childPath(key), key: key)
    }
}

private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "[\(intValue ?? 0)]" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

private struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
    let decoder: NodeDecoder
    let items: [ConfigNode]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else { throw decoder.error("list has too few items") }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], path: "\(decoder.path)[\(currentIndex)]", key: IndexKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = items[currentIndex].value else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: try next()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }

    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleNodeContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        if case .null = decoder.node.value { return true }
        return false
    }

    /// The scalar text, or the reason there is none.
    private func text(expecting what: String) throws -> String? {
        switch decoder.node.value {
        case .scalar(let text, _): return text
        case .missingVariable(let name):
            throw decoder.error("needs environment variable \(name), which is not set (set it, name a file holding it in \(name)_FILE, put it in .env, or write ${\(name):-default})")
        default:
            throw decoder.error("expected \(what), got \(describe(decoder.node))")
        }
    }

    func decode(_ type: String.Type) throws -> String { try text(expecting: "a string") ?? "" }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard let text = try text(expecting: "true or false") else { return false }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw decoder.error("expected true or false, got '\(text)'")
        }
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard let text = try text(expecting: "an integer") else { return 0 }
        guard let value = T(text.replacingOccurrences(of: "_", with: "")) else {
            throw decoder.error("expected an integer, got '\(text)'")
        }
        return value
    }

    private func floating(_ text: String?) throws -> Double {
        guard let text else { return 0 }
        guard let value = Double(text), value.isFinite else {
            throw decoder.error("expected a number, got '\(text)'")
        }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double { try floating(try text(expecting: "a number")) }
    func decode(_ type: Float.Type) throws -> Float { Float(try floating(try text(expecting: "a number"))) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }
}

extension ConfigError {
    /// An error about `key` of the section `decoder` is reading, with its file position and full
    /// path; for range checks in a configuration's `init(from:)`.
    public static func invalid(_ key: String, _ message: String, in decoder: any Decoder) -> ConfigError {
        guard let decoder = decoder as? NodeDecoder else {
            return ConfigError(location: nil, path: join("", decoder.codingPath.map(\.stringValue) + [key]), message: message)
        }
        let entry = decoder.node.entries?.first { $0.key == key }
        return ConfigError(location: entry?.value.location ?? decoder.node.location,
                           path: decoder.path.isEmpty ? key : "\(decoder.path).\(key)", message: message)
    }
}

extension KeyedDecodingContainer {
    /// Sets `value` from `key` when the key is present, and keeps what it holds (the
    /// configuration's default) when it is absent.
    public func fill<T: Decodable>(_ value: inout T, _ key: Key) throws {
        if let decoded = try decodeIfPresent(T.self, forKey: key) { value = decoded }
    }
}

extension CodingUserInfoKey {
    /// The folder of the configuration file being decoded (a `URL`).
    public static let configurationDirectory = CodingUserInfoKey(rawValue: "embed-star.configuration-directory")!
}

extension Decoder {
    /// `path` as a configuration means it: relative to the configuration file's folder (the
    /// working directory when the decoder has none); absolute paths unchanged. For file keys
    /// (`tls_ca_file`, ...), so a check at decode time reads the file the plugin will use.
    public func configurationPath(_ path: String) -> String {
        ConfigPath.resolve(path, against: userInfo[.configurationDirectory] as? URL).path
    }
}

/// How a path in the configuration is resolved: one rule for every plugin.
public enum ConfigPath {
    /// `path` against `directory` (the working directory when nil) unless it is absolute.
    public static func resolve(_ path: String, against directory: URL?) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        return (directory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).appendingPathComponent(path)
    }
}

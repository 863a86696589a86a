import Yams

/// Where a configuration value came from: a file position or a command-line flag.
public struct ConfigLocation: Sendable, Hashable, CustomStringConvertible {
    public var source: String
    public var line: Int?
    public var column: Int?

    public init(source: String, line: Int? = nil, column: Int? = nil) {
        self.source = source
        self.line = line
        self.column = column
    }

    public var description: String {
        guard let line else { return source }
        guard let column else { return "\(source):\(line)" }
        return "\(source):\(line):\(column)"
    }
}

/// A parsed YAML tree that remembers where each value was written, so every configuration
/// error can name its file, line and key. Sendable, unlike Yams' nodes.
public struct ConfigNode: Sendable {
    public enum Value: Sendable {
        case null
        case scalar(String, quoted: Bool)
        /// `${NAME}` with no default and `NAME` unset: an error only if something reads it.
        case missingVariable(String)
        case mapping([ConfigEntry])
        case sequence([ConfigNode])
    }

    public var value: Value
    public var location: ConfigLocation?

    public init(_ value: Value, location: ConfigLocation? = nil) {
        self.value = value
        self.location = location
    }

    public static let emptyMapping = ConfigNode(.mapping([]))

    public var entries: [ConfigEntry]? {
        if case .mapping(let entries) = value { return entries }
        return nil
    }

    public subscript(key: String) -> ConfigNode? {
        entries?.first { $0.key == key }?.value
    }

    /// The scalar text, if this is a scalar.
    public var scalarText: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    /// Sets `path` to `node`, creating mappings on the way.
    public mutating func set(_ path: ArraySlice<String>, to node: ConfigNode) {
        guard let key = path.first else {
            self = node
            return
        }
        var entries = self.entries ?? []
        if let index = entries.firstIndex(where: { $0.key == key }) {
            entries[index].value.set(path.dropFirst(), to: node)
        } else {
            var child = ConfigNode.emptyMapping
            child.set(path.dropFirst(), to: node)
            entries.append(ConfigEntry(key: key, location: node.location, value: child))
        }
        value = .mapping(entries)
    }

    /// This mapping with `other`'s keys laid over it, recursively; other values replace.
    public func merged(with other: ConfigNode) -> ConfigNode {
        guard var entries = self.entries, let overlay = other.entries else { return other }
        for entry in overlay {
            if let index = entries.firstIndex(where: { $0.key == entry.key }) {
                entries[index].value = entries[index].value.merged(with: entry.value)
            } else {
                entries.append(entry)
            }
        }
        return ConfigNode(.mapping(entries), location: location)
    }
}

public struct ConfigEntry: Sendable {
    public var key: String
    public var location: ConfigLocation?
    public var value: ConfigNode

    public init(key: String, location: ConfigLocation?, value: ConfigNode) {
        self.key = key
        self.location = location
        self.value = value
    }
}

extension ConfigNode {
    /// Parses YAML text. Syntax errors carry the file, line and column.
    public static func parse(yaml: String, source: String) throws(ConfigError) -> ConfigNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError.syntax(error, source: source)
        } catch {
            throw ConfigError(location: ConfigLocation(source: source), path: nil, message: "cannot parse YAML: \(error)")
        }
        guard let root else { return .emptyMapping }
        return try convert(root, source: source, path: "")
    }

    private static func convert(_ node: Node, source: String, path: String) throws(ConfigError) -> ConfigNode {
        let location = node.mark.map { ConfigLocation(source: source, line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
            return ConfigNode(ConfigNode.scalarValue(scalar.string, quoted: quoted), location: location)
        case .mapping(let mapping):
            var entries: [ConfigEntry] = []
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigError(location: location, path: path.isEmpty ? nil : path, message: "mapping keys must be plain strings")
                }
                let keyLocation = key.mark.map { ConfigLocation(source: source, line: $0.line, column: $0.column) }
                let childPath = path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)"
                entries.append(ConfigEntry(key: keyScalar.string, location: keyLocation, value: try convert(value, source: source, path: childPath)))
            }
            return ConfigNode(.mapping(entries), location: location)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for (index, item) in sequence.enumerated() {
                items.append(try convert(item, source: source, path: "\(path)[\(index)]"))
            }
            return ConfigNode(.sequence(items), location: location)
        case .alias:
            throw ConfigError(location: location, path: path.isEmpty ? nil : path, message: "YAML aliases are not supported here")
        }
    }

    /// A plain empty scalar, `~` or `null` is YAML's null; quoted text is always a string.
    public static func scalarValue(_ text: String, quoted: Bool) -> Value {
        if !quoted, ["", "~", "null", "Null", "NULL"].contains(text) { return .null }
        return .scalar(text, quoted: quoted)
    }
}

import Foundation

/// Why one record could not be read. The record is skipped and reported; its batch goes on.
public struct RecordError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The record id when it could be read, else the record's position in its source.
    public var record: String
    public var field: String?
    public var problem: String

    public init(record: String, field: String?, problem: String) {
        self.record = record
        self.field = field
        self.problem = problem
    }

    public var description: String {
        if let field { return "record \(record): field '\(field)': \(problem)" }
        return "record \(record): \(problem)"
    }
}

extension Repo {
    /// Reads a repo record leniently: optional fields may be missing or null, unknown fields are
    /// ignored, numbers written as strings are accepted. A field of the wrong type is an error
    /// for this record only, because embedding a text built from a misread field is worse than
    /// skipping the record. `fallbackName` names the record in errors when it has no usable id.
    public static func decode(_ value: JSONValue, fallbackName: String) -> Result<Repo, RecordError> {
        do {
            var reader = RecordReader(value: value, name: fallbackName)
            return .success(try reader.repo())
        } catch let error as RecordError {
            return .failure(error)
        } catch {
            return .failure(RecordError(record: fallbackName, field: nil, problem: "\(error)"))
        }
    }

    /// The record as the collector writes it (snake_case fields), for seed files and the Mock store.
    public var jsonValue: JSONValue {
        var fields: [String: JSONValue] = [
            "id": .string(id.rawValue),
            "name": .string(name),
            "full_name": .string(fullName),
            "stars": .int(Int64(stars)),
            "is_private": .bool(isPrivate),
            "topics": .array(topics.map { .string($0) }),
        ]
        if let githubID { fields["github_id"] = .int(githubID) }
        fields["description"] = description.map { .string($0) } ?? .null
        fields["language"] = language.map { .string($0) } ?? .null
        if let url { fields["url"] = .string(url) }
        if let owner {
            var ownerFields: [String: JSONValue] = ["login": .string(owner.login)]
            if let avatar = owner.avatarURL { ownerFields["avatar_url"] = .string(avatar) }
            fields["owner"] = .object(ownerFields)
        }
        if let createdAt { fields["created_at"] = .string(RecordReader.formatDate(createdAt)) }
        if let updatedAt { fields["updated_at"] = .string(RecordReader.formatDate(updatedAt)) }
        return .object(fields)
    }
}

private struct RecordReader {
    let value: JSONValue
    var name: String

    init(value: JSONValue, name: String) {
        self.value = value
        self.name = name
    }

    mutating func repo() throws -> Repo {
        guard case .object(let fields) = value else {
            throw RecordError(record: name, field: nil, problem: "expected an object, got \(value.typeName)")
        }
        let id = try recordID(fields)
        name = id.rawValue
        let owner = try ownerField(fields["owner"])
        var fullName = try string(fields, "full_name")
        let shortName = try string(fields, "name")
        if fullName == nil, let shortName, let login = owner?.login {
            fullName = "\(login)/\(shortName)"
        }
        guard let fullName, !fullName.isEmpty else {
            throw RecordError(record: name, field: "full_name", problem: "missing")
        }
        return Repo(
            id: id,
            githubID: try integer(fields, "github_id").map(Int64.init),
            name: shortName,
            fullName: fullName,
            description: try string(fields, "description"),
            url: try string(fields, "url"),
            stars: try integer(fields, "stars") ?? 0,
            language: try string(fields, "language"),
            owner: owner,
            isPrivate: try bool(fields, "is_private") ?? false,
            topics: try strings(fields, "topics"),
            createdAt: try date(fields, "created_at"),
            updatedAt: try date(fields, "updated_at")
        )
    }

    private func recordID(_ fields: [String: JSONValue]) throws -> RepoID {
        switch fields["id"] {
        case .string(let raw) where !raw.isEmpty:
            return RepoID(raw.contains(":") ? raw : "repo:\(raw)")
        case .int(let number):
            return RepoID("repo:\(number)")
        case nil, .null:
            if case .int(let githubID) = fields["github_id"] { return RepoID("repo:\(githubID)") }
            throw RecordError(record: name, field: "id", problem: "missing (and no github_id to derive it from)")
        case .some(let other):
            throw RecordError(record: name, field: "id", problem: "expected a string, got \(other.typeName)")
        }
    }

    private func string(_ fields: [String: JSONValue], _ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null: return nil
        case .string(let value): return value
        case .some(let other):
            throw RecordError(record: name, field: key, problem: "expected a string, got \(other.typeName)")
        }
    }

    private func integer(_ fields: [String: JSONValue], _ key: String) throws -> Int? {
        switch fields[key] {
        case nil, .null: return nil
        case .int(let value): return Int(value)
        case .double(let value) where value.rounded() == value && abs(value) < 1e15: return Int(value)
        case .string(let text) where Int(text.trimmingCharacters(in: .whitespaces)) != nil:
            return Int(text.trimmingCharacters(in: .whitespaces))
        case .some(let other):
            throw RecordError(record: name, field: key, problem: "expected an integer, got \(describe(other))")
        }
    }

    private func bool(_ fields: [String: JSONValue], _ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null: return nil
        case .bool(let value): return value
        case .some(let other):
            throw RecordError(record: name, field: key, problem: "expected a boolean, got \(describe(other))")
        }
    }

    private func strings(_ fields: [String: JSONValue], _ key: String) throws -> [String] {
        switch fields[key] {
        case nil, .null: return []
        case .array(let items):
            return try items.enumerated().map { index, item in
                guard case .string(let text) = item else {
                    throw RecordError(record: name, field: "\(key)[\(index)]", problem: "expected a string, got \(item.typeName)")
                }
                return text
            }
        case .some(let other):
            throw RecordError(record: name, field: key, problem: "expected an array of strings, got \(other.typeName)")
        }
    }

    private func ownerField(_ value: JSONValue?) throws -> Repo.Owner? {
        switch value {
        case nil, .null: return nil
        case .string(let login): return Repo.Owner(login: login)
        case .object(let fields):
            guard let login = try string(fields, "login") else {
                throw RecordError(record: name, field: "owner.login", problem: "missing")
            }
            return Repo.Owner(login: login, avatarURL: try string(fields, "avatar_url"))
        case .some(let other):
            throw RecordError(record: name, field: "owner", problem: "expected an object, got \(other.typeName)")
        }
    }

    private func date(_ fields: [String: JSONValue], _ key: String) throws -> Date? {
        guard let text = try string(fields, key) else { return nil }
        guard let date = Self.parseDate(text) else {
            throw RecordError(record: name, field: key, problem: "not an ISO 8601 date: '\(text.prefix(40))'")
        }
        return date
    }

    private func describe(_ value: JSONValue) -> String {
        if case .string(let text) = value { return "'\(text.prefix(40))'" }
        return value.typeName
    }

    static func parseDate(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return try? fractional.parse(text)
    }

    static func formatDate(_ date: Date) -> String {
        let whole = date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
        return whole ? date.formatted(.iso8601) : date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

extension Repo: Codable {
    /// Decodes a collector record leniently (see ``decode(_:fallbackName:)``); a record that
    /// cannot be read throws its ``RecordError``.
    public init(from decoder: any Decoder) throws {
        self = try Repo.decode(try JSONValue(from: decoder), fallbackName: decoder.codingPath.map(\.stringValue).joined(separator: ".")).get()
    }

    /// Encodes the record as the collector writes it.
    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}

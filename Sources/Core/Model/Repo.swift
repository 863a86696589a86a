import Foundation

/// The record id of a repo, as the store names it (`repo:abc123`).
public struct RepoID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: RepoID, rhs: RepoID) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension RepoID: Codable {
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A GitHub repository as the collector writes it. Only the fields embed-star reads are kept;
/// unknown fields are ignored when decoding.
public struct Repo: Hashable, Sendable {
    public struct Owner: Hashable, Sendable {
        public var login: String
        public var avatarURL: String?

        public init(login: String, avatarURL: String? = nil) {
            self.login = login
            self.avatarURL = avatarURL
        }
    }

    public var id: RepoID
    public var githubID: Int64?
    public var name: String
    public var fullName: String
    public var description: String?
    public var url: String?
    public var stars: Int
    public var language: String?
    public var owner: Owner?
    public var isPrivate: Bool
    public var topics: [String]
    public var createdAt: Date?
    public var updatedAt: Date?

    public init(
        id: RepoID,
        githubID: Int64? = nil,
        name: String? = nil,
        fullName: String,
        description: String? = nil,
        url: String? = nil,
        stars: Int = 0,
        language: String? = nil,
        owner: Owner? = nil,
        isPrivate: Bool = false,
        topics: [String] = [],
        createdAt: Date? = nil,
        updatedAt: Date? = nil
    ) {
        self.id = id
        self.githubID = githubID
        self.name = name ?? String(fullName.split(separator: "/").last ?? Substring(fullName))
        self.fullName = fullName
        self.description = description
        self.url = url
        self.stars = stars
        self.language = language
        self.owner = owner
        self.isPrivate = isPrivate
        self.topics = topics
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

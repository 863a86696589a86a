import EmbedStarApp
import EmbedStarCore
import EmbedStarMockStore
@testable import EmbedStarRunner
import EmbedStarTesting
import Foundation
import Synchronization
import Testing

/// A store whose `upsert` fails from its `failAt`-th call on.
final class FailingUpsertStore: ForwardingStore {
    let inner: any RepoStore
    let failAt: Int
    let calls = Mutex(0)
    init(_ inner: any RepoStore, failAt: Int) {
        self.inner = inner
        self.failAt = failAt
    }
    func upsert(_ repos: [Repo]) async throws {
        let call = calls.withLock { $0 += 1; return $0 }
        if call >= failAt { throw CLIError.failure("the store went away") }
        try await inner.upsert(repos)
    }
}

struct ImportTests {
    func parse(_ text: String) throws -> (repos: [Repo], rejected: [RecordError]) {
        try GitHubStarred.parse(Data(text.utf8), source: "stars.json")
    }

    let star = #"{"id": 7, "full_name": "o/a", "name": "a", "html_url": "https://github.com/o/a", "stargazers_count": 1}"#

    @Test func oneRepositoryPerLineIsRead() throws {
        let lines = star + "\n" + star.replacingOccurrences(of: "\"id\": 7", with: "\"id\": 8").replacingOccurrences(of: "o/a", with: "o/b") + "\n"
        let parsed = try parse(lines)
        #expect(parsed.repos.map(\.id.rawValue) == ["repo:7", "repo:8"])
        #expect(parsed.rejected.isEmpty)
    }

    @Test func aByteOrderMarkAndSlurpedPagesAreRead() throws {
        let other = star.replacingOccurrences(of: "\"id\": 7", with: "\"id\": 8")
        let parsed = try parse("\u{FEFF}[[\(star)], [\(other)]]")
        #expect(parsed.repos.map(\.id.rawValue) == ["repo:7", "repo:8"])
        #expect(try parse("[]").repos.isEmpty, "an empty list of stars is no error")
    }

    @Test(arguments: [
        ("", "holds no repositories"),
        ("   \n", "holds no repositories"),
        ("not json at all", "text outside an array or object at byte 0"),
        (#"{"message": "Bad credentials", "documentation_url": "https://docs.github.com"}"#, "GitHub's error answer, not repositories: Bad credentials"),
        (#"[{"id": 1, "full_name": "o/a"}] trailing"#, "text outside an array or object at byte 32"),
        ("\"just a string\"", "text outside an array or object"),
    ])
    func whatIsNoListOfRepositoriesIsAnErrorThatSaysWhere(_ text: String, _ message: String) {
        #expect {
            try parse(text)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains("stars.json")
        }
    }

    /// A store failure half-way: the chunks before it are written and the error says how many.
    @Test func aFailureHalfWaySaysWhatWasWritten() async throws {
        let mock = MockStore(repos: [])
        let store = FailingUpsertStore(mock, failAt: 3)
        let repos = SyntheticRepos.generate(count: 1_200)
        await #expect {
            try await ImportCommand.upsert(repos, into: store)
        } throws: { error in
            "\(error)".contains("stopped after 1000 of 1200 repos were written (through \(repos[999].fullName), in file order)")
                && "\(error)".contains("importing the same files again is safe")
        }
        #expect(await mock.count == 1_000)
    }
}

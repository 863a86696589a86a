import EmbedStarConfig
import EmbedStarCore
import EmbedStarSurrealStore
import SurrealClient
import Testing

/// Item 10 of issue 14: credentials inside the URL (`DB_URL=ws://user:pass@host`).
@Suite struct ConfigurationTests {
    func decode(_ yaml: String) throws -> SurrealStore.Configuration {
        try ConfigDecoder().decode(SurrealStore.Configuration.self, from: try ConfigNode.parse(yaml: yaml, source: "plugins.yaml"), path: "stores.surreal")
    }

    @Test func credentialsInTheURLAreUsedNotDropped() throws {
        let configuration = try decode("url: ws://reader:s%40cret@db.example:8000")
        #expect(configuration.user == "reader")
        #expect(configuration.pass == "s@cret")
        // The same ones also given as keys are fine.
        let both = try decode("url: ws://reader:s%40cret@db.example:8000\nuser: reader\npass: s@cret")
        #expect(both.user == "reader")
    }

    @Test func otherCredentialsInTheKeysAreRefusedWithoutShowingThePassword() throws {
        do {
            _ = try decode("url: ws://reader:hunter2@db.example:8000\nuser: admin\npass: other")
            Issue.record("conflicting credentials must be refused")
        } catch {
            #expect("\(error)".contains("set them in one place only"))
            #expect(!"\(error)".contains("hunter2"), "the password must not appear in the error: \(error)")
        }
    }

    @Test func aBadURLIsReportedWithoutItsPassword() throws {
        do {
            _ = try decode("url: ftp://reader:hunter2@db.example")
            Issue.record("an ftp URL must be refused")
        } catch {
            #expect("\(error)".contains("ftp://reader:***@db.example"), "\(error)")
            #expect(!"\(error)".contains("hunter2"))
        }
    }
}

import Foundation
import Testing

/// For TLS tests: a CA, a certificate it signs for localhost and 127.0.0.1, and an unrelated CA.
public struct TestCertificates {
    public let folder: URL
    public var ca: String { folder.appendingPathComponent("ca.pem").path }
    public var otherCA: String { folder.appendingPathComponent("other-ca.pem").path }
    public var certificate: String { folder.appendingPathComponent("server.pem").path }
    public var key: String { folder.appendingPathComponent("server.key").path }

    public init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(to: folder.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        for command in [
            "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=embed-star-test-CA",
            "req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=some-other-CA",
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext",
        ] {
            try Self.openssl(command.split(separator: " ").map(String.init), in: folder)
        }
    }

    static func openssl(_ arguments: [String], in folder: URL) throws {
        let process = Foundation.Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " ")) failed")
    }
}


extension TestCertificates {
    /// Removes the files.
    public func remove() { try? FileManager.default.removeItem(at: folder) }
}

import Foundation

/// For tests that start a server of their own: a TCP port on 127.0.0.1 that nothing uses now.
///
/// The kernel picks it (bind to port 0), so it is not one of the ports the test process's own
/// outgoing connections hold, which a port picked at random from the ephemeral range can be
/// (the server then fails to bind and exits). A port is free at the moment it is returned;
/// a server started right after takes it.
public enum LocalPort {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Unavailable(description: "no free local port: socket() failed (errno \(errno))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Unavailable(description: "no free local port: bind to 127.0.0.1:0 failed (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

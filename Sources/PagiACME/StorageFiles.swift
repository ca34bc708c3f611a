import Crypto
import Foundation
import PagiConfig
import SwiftASN1
import X509

/// Reading and writing the ACME storage (`ACMEStorage` has the layout and the modes).
enum StorageFiles {
    /// Makes the directories a certificate order writes to, with their modes.
    static func prepare(_ acme: ACMEConfig) throws {
        let challenges = ACMEStorage.challengeDirectory(storage: acme.storage)
        for (directory, mode) in [(acme.storage, 0o711), (ACMEStorage.issuerDirectory(acme), 0o700), (challenges, 0o755),
                                  (challenges + "/http-01", 0o755), (challenges + "/tls-alpn-01", 0o755)] as [(String, mode_t)] {
            try makeDirectory(directory, mode: mode)
        }
    }

    /// Creates `path` (and its parents) with `mode`; one that exists keeps its own.
    static func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
    }

    /// Writes `text` whole or not at all: into a new file of `mode` beside `path` (never readable
    /// by others on its way), then renamed over it.
    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let temporary = path + ".\(getpid()).tmp"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw ACMEError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ACMEError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The account key of `acme`'s server, made the first time.
    static func accountKey(_ acme: ACMEConfig) throws -> AccountKey {
        let file = ACMEStorage.accountKey(acme)
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            guard let key = try? P256.Signing.PrivateKey(pemRepresentation: text) else {
                throw ACMEError("\(file) is not a P-256 private key: move it away to make a new account")
            }
            return AccountKey(key: key)
        }
        try prepare(acme)
        let key = P256.Signing.PrivateKey()
        try write(key.pemRepresentation + "\n", to: file, mode: 0o600)
        return AccountKey(key: key)
    }

    /// Stores a certificate for `names`: the key first, so that a reader never finds a new
    /// certificate beside the old key. Readers are told only once both are in place.
    static func store(_ issued: (chain: String, key: String), _ acme: ACMEConfig, names: [String]) throws {
        let files = ACMEStorage.certificateFiles(acme, names: names)
        try prepare(acme)
        try makeDirectory((files.cert as NSString).deletingLastPathComponent, mode: 0o700)
        try write(issued.key, to: files.key, mode: 0o600)
        try write(issued.chain, to: files.cert, mode: 0o600)
    }
}

/// What the storage holds for a set of names: enough to know whether it serves them and when to
/// renew it.
struct StoredCertificate {
    let notBefore: Date
    let notAfter: Date
    let names: Set<String>
    let serial: String

    /// Nil when there is none, or when the certificate or the key cannot be used (they do not
    /// belong together, a file is damaged): then a new one is obtained.
    init?(_ acme: ACMEConfig, names: [String]) {
        let files = ACMEStorage.certificateFiles(acme, names: names)
        guard let chain = try? String(contentsOfFile: files.cert, encoding: .utf8),
              let keyText = try? String(contentsOfFile: files.key, encoding: .utf8),
              let first = try? PEMDocument.parseMultiple(pemString: chain).first,
              let certificate = try? Certificate(pemDocument: first),
              let key = try? P256.Signing.PrivateKey(pemRepresentation: keyText),
              certificate.publicKey == Certificate.PublicKey(key.publicKey) else { return nil }
        notBefore = certificate.notValidBefore
        notAfter = certificate.notValidAfter
        serial = certificate.serialNumber.description
        let alternativeNames = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        self.names = Set(alternativeNames?.compactMap { name in
            if case .dnsName(let dns) = name { return dns.lowercased() }
            return nil
        } ?? [])
    }

    /// Two thirds into its lifetime (docs/tls.md), as certbot and Caddy renew.
    var renewal: Date {
        notBefore.addingTimeInterval(notAfter.timeIntervalSince(notBefore) * 2 / 3)
    }

    func serves(_ wanted: [String]) -> Bool {
        Set(wanted).isSubset(of: names)
    }
}

extension ACMEStorage {
    /// Workers that serve as another user answer challenges from `<storage>/challenges`: a
    /// directory above the storage they may not pass through (a storage under root's home, 0700)
    /// would fail every validation. The first such directory of `config`'s storages, with why.
    public static func unreachable(in config: Config, by worker: RunAs) -> String? {
        let storages = Set(config.hosts.compactMap { $0.tls?.acme?.storage })
        for storage in storages.sorted() {
            var directory = (storage as NSString).deletingLastPathComponent
            while !directory.isEmpty {
                var info = stat()
                if stat(directory, &info) == 0 {
                    let search: mode_t = info.st_uid == worker.uid ? 0o100 : info.st_gid == worker.gid ? 0o010 : 0o001
                    if info.st_mode & search == 0 {
                        return "workers serving as '\(worker.user)' cannot pass through \(directory) to answer ACME challenges from \(storage): set tls.acme.storage to a directory they can reach, e.g. /var/lib/pagi-serve/acme"
                    }
                }
                if directory == "/" { break }
                directory = (directory as NSString).deletingLastPathComponent
            }
        }
        return nil
    }
}

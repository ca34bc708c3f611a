import Foundation
import Logging
import NIOSSL
import PagiConfig
import Synchronization

/// Keeps the ACME certificates of a configuration obtained and renewed (docs/tls.md, *Automatic
/// certificates*): one task per certificate obtains it when the storage has none that serves its
/// names, sleeps until two thirds of its lifetime, and renews it; a failure is logged with the
/// CA's reason and tried again after 1, 2, 4 … minutes (at most 6 hours), while the certificate in
/// the storage — if any — keeps serving. `changed` is told after each new certificate is stored,
/// so that the server reads it (without dropping a connection).
///
/// Runs in the process that owns the listeners: a single server, or the supervisor of workers.
public final class ACMEManager: Sendable {
    private let logger: Logger
    private let changed: @Sendable () -> Void
    private let running = Mutex<[Task<Void, Never>]>([])

    public init(logger: Logger, changed: @escaping @Sendable () -> Void) {
        self.logger = logger
        self.changed = changed
    }

    /// Manages what `config` asks for, in place of what the previous configuration asked for.
    public func manage(_ config: Config) {
        stop()
        var clients: [ACMEConfig: ACMEClient] = [:]
        var tasks: [Task<Void, Never>] = []
        for host in config.hosts {
            guard let tls = host.tls, let acme = tls.acme, !tls.acmeNames.isEmpty else { continue }
            let client: ACMEClient
            if let known = clients[acme] {
                client = known
            } else {
                do {
                    client = try Self.client(acme, sources: config.sources)
                } catch {
                    logger.error("ACME: \(error); no certificate is obtained for \(tls.acmeNames.joined(separator: ", "))")
                    continue
                }
                clients[acme] = client
            }
            tasks.append(Task { [logger, changed] in
                await Self.keep(names: tls.acmeNames, acme: acme, client: client, logger: logger, changed: changed)
            })
        }
        running.withLock { $0 = tasks }
        // The clients close once the tasks that use them end (at the next `manage` or `stop`).
        let finished = tasks
        Task {
            for task in finished { await task.value }
            for client in clients.values { await client.shutdown() }
        }
    }

    public func stop() {
        for task in running.withLock({ tasks in defer { tasks = [] }; return tasks }) { task.cancel() }
    }

    private static func client(_ acme: ACMEConfig, sources: [String: String]) throws -> ACMEClient {
        var roots: [NIOSSLCertificate]?
        if let bundle = acme.caRoots {
            let text = sources[bundle] ?? (try? String(contentsOfFile: bundle, encoding: .utf8)) ?? ""
            guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(text.utf8)), !certificates.isEmpty else {
                throw ACMEError("ca_roots '\(bundle)' holds no PEM certificate")
            }
            roots = certificates
        }
        return ACMEClient(directory: acme.directory, key: try StorageFiles.accountKey(acme), email: acme.email, trusting: roots)
    }

    /// The life of one certificate, until cancelled.
    private static func keep(names: [String], acme: ACMEConfig, client: ACMEClient, logger: Logger,
                             changed: @Sendable () -> Void) async {
        let label = names.joined(separator: ", ")
        var failures = 0
        while !Task.isCancelled {
            let stored = StoredCertificate(acme, names: names)
            var wait: TimeInterval
            if let stored, stored.serves(names), Date() < stored.renewal {
                wait = stored.renewal.timeIntervalSinceNow
            } else {
                do {
                    logger.info("ACME: \(stored == nil ? "obtaining" : "renewing") the certificate for \(label) from \(acme.directory)")
                    let issued = try await CertificateOrder(client: client, acme: acme, names: names).obtain()
                    try StorageFiles.store(issued, acme, names: names)
                    let new = StoredCertificate(acme, names: names)
                    logger.notice("ACME: new certificate for \(label) (serial \(new?.serial ?? "?"), valid until \(new.map { "\($0.notAfter)" } ?? "?"))")
                    failures = 0
                    changed()
                    continue
                } catch {
                    if Task.isCancelled { return }
                    failures += 1
                    wait = min(60 * pow(2, Double(min(failures, 10) - 1)), 6 * 3600)
                    let serving = stored.map { "the current certificate (valid until \($0.notAfter)) keeps serving" }
                        ?? "until then TLS clients asking for these names get an alert"
                    logger.error("ACME: could not obtain the certificate for \(label): \(error); next attempt in \(Int(wait)) s; \(serving)")
                }
            }
            // Never a busy loop (a certificate whose renewal time has passed at issue), and a
            // look at least daily (the clock may jump).
            try? await Task.sleep(for: .seconds(min(max(wait, 5), 86_400)))
        }
    }
}

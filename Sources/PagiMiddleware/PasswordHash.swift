import CCrypt
#if canImport(Glibc)
import Glibc
#endif

/// crypt(3) hashes through the system's libxcrypt (`crypt_rn`, re-entrant): bcrypt (`$2a$`,
/// `$2b$`, `$2y$`) and sha512-crypt (`$6$`). No Swift package of the mirror implements bcrypt,
/// hence the C library.
public enum PasswordHash {
    /// True when `password` hashes to `hash`. The comparison takes the same time wherever the
    /// two differ. Slow by design (bcrypt cost 12: ~0.25 s): never call it on an event loop.
    public static func verify(_ password: String, hash: String) -> Bool {
        guard let computed = crypt(password, setting: hash) else { return false }
        return constantTimeEquals(Array(computed.utf8), Array(hash.utf8))
    }

    /// A new bcrypt (`$2b$`) hash of `password` with a random salt, for `pagi-serve hash-password`.
    public static func bcrypt(_ password: String, cost: Int = 12) -> String? {
        make(password, method: "$2b$", cost: cost)
    }

    /// A new hash by `method` (`$2b$` bcrypt with `cost`, `$6$` sha512-crypt with `cost` rounds,
    /// 0 = the library's default), with a random salt.
    public static func make(_ password: String, method: String, cost: Int) -> String? {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn(method, UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil else { return nil }
        return crypt(password, setting: String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private static func crypt(_ password: String, setting: String) -> String? {
        // `crypt_data` is ~32 KiB: on the heap, not on a worker thread's stack.
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_rn(password, setting, data, Int32(MemoryLayout<crypt_data>.size)) else { return nil }
        let text = String(cString: result)
        // libxcrypt marks failure with a string starting with `*` (never a valid hash).
        return text.hasPrefix("*") ? nil : text
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

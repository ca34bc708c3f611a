#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who the worker processes become once the listeners are bound (`server.user`, `server.group`;
/// docs/operations.md, *Privileges*), resolved against the system's user and group databases
/// when the file is loaded, so that `pagi-serve check` names an account that does not exist.
public struct RunAs: Sendable, Hashable {
    /// `user` as written (a name or a numeric id).
    public var user: String
    public var uid: UInt32
    public var gid: UInt32
    /// The account's name in the user database, for its supplementary groups; nil for a numeric
    /// id that has no entry there (it then gets no supplementary group).
    public var accountName: String?
    public var location: SourceLocation?

    public init(user: String, uid: UInt32, gid: UInt32, accountName: String?, location: SourceLocation? = nil) {
        (self.user, self.uid, self.gid, self.accountName, self.location) = (user, uid, gid, accountName, location)
    }

    /// `user` (a name or a numeric id) and `group` (likewise; by default the user's own group).
    public static func resolve(user: String, group: String?) -> Result<RunAs, ResolveError> {
        let account = Account.user(user)
        let uid: UInt32
        if let account {
            uid = account.id
        } else if let number = UInt32(user) {
            uid = number
        } else {
            return .failure(ResolveError(.user, "no user '\(user)' on this system"))
        }
        let gid: UInt32
        if let group {
            guard let found = Account.group(group)?.id ?? UInt32(group) else {
                return .failure(ResolveError(.group, "no group '\(group)' on this system"))
            }
            gid = found
        } else if let primary = account?.primaryGroup {
            gid = primary
        } else {
            return .failure(ResolveError(.user, "user id \(user) has no entry in the user database, so it has no group of its own: set 'group' too"))
        }
        return .success(RunAs(user: user, uid: uid, gid: gid, accountName: account?.name))
    }

    public struct ResolveError: Error, CustomStringConvertible {
        public enum Key: Sendable { case user, group }
        /// The key whose value is wrong.
        public let key: Key
        public let description: String
        init(_ key: Key, _ description: String) { (self.key, self.description) = (key, description) }
    }

    /// The name of the account `uid` belongs to, or the number.
    public static func name(ofUser uid: UInt32) -> String {
        Account.user(String(uid))?.name ?? String(uid)
    }
}

/// Lookups in the system's user and group databases (`getpwnam_r` and friends: the reentrant
/// forms, since reloads may run beside other threads).
private struct Account {
    var name: String
    var id: UInt32
    var primaryGroup: UInt32?

    static func user(_ nameOrID: String) -> Account? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let status: Int32 = if let id = UInt32(nameOrID) {
            getpwuid_r(id, &entry, &buffer, buffer.count, &result)
        } else {
            getpwnam_r(nameOrID, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, let found = result?.pointee else { return nil }
        return Account(name: String(cString: found.pw_name), id: found.pw_uid, primaryGroup: found.pw_gid)
    }

    static func group(_ nameOrID: String) -> Account? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 65_536)
        let status: Int32 = if let id = UInt32(nameOrID) {
            getgrgid_r(id, &entry, &buffer, buffer.count, &result)
        } else {
            getgrnam_r(nameOrID, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, let found = result?.pointee else { return nil }
        return Account(name: String(cString: found.gr_name), id: found.gr_gid)
    }
}

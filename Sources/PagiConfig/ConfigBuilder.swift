import Foundation

/// Collects every error and warning of one load.
final class DiagnosticLog {
    private(set) var diagnostics: [Diagnostic] = []
    /// Scalars whose `${VAR}` could not be substituted: further errors about their value would only repeat it.
    private var unusableScalars: Set<SourceLocation> = []

    var hasErrors: Bool { errorCount > 0 }
    var errorCount: Int { diagnostics.count(where: { $0.severity == .error }) }

    func error(_ message: String, at location: SourceLocation) {
        guard !unusableScalars.contains(location) else { return }
        diagnostics.append(Diagnostic(.error, message, at: location))
    }

    func substitutionFailed(_ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.error, message, at: location))
        unusableScalars.insert(location)
    }

    func warning(_ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.warning, message, at: location))
    }

    func notSupportedYet(_ name: String, at location: SourceLocation) {
        warning("'\(name)' is not supported yet", at: location)
    }
}

/// The entries of a YAML mapping whose keys were checked against the keys its section allows.
struct Section {
    struct Entry {
        var key: String
        var keyLocation: SourceLocation
        var value: YAMLNode
    }

    var location: SourceLocation
    var entries: [Entry]

    subscript(key: String) -> YAMLNode? { entries.first { $0.key == key }?.value }

    func keyLocation(_ key: String) -> SourceLocation? { entries.first { $0.key == key }?.keyLocation }
}

/// Builds the typed `Config` from `YAMLNode` trees. Every reader logs what is wrong and returns nil,
/// so that one run reports every mistake; the sections live in the `ConfigBuilder+*.swift` files.
final class ConfigBuilder {
    let log = DiagnosticLog()
    let environment: [String: String]
    var config = Config()
    /// Where each named middleware stack was defined, for duplicates and reference checks.
    var stackLocations: [String: SourceLocation] = [:]
    /// Every stack reference, checked once all files (and so all stacks) are read.
    var stackReferences: [(name: String, location: SourceLocation)] = []
    /// Files as named in diagnostics, in the order read (diagnostics are sorted by it).
    var filesInReadOrder: [String] = []
    /// The file being read and the files that included it, to detect include cycles.
    var includeChain: [(file: String, absolute: String)] = []
    /// Where `workers` asks for more than one process, if it does.
    var severalWorkersLocation: SourceLocation?
    /// Texts to read instead of the files at these absolute paths (`ConfigLoader.load(path:sources:)`).
    let sources: [String: String]

    init(environment: [String: String], sources: [String: String] = [:]) {
        self.environment = environment
        self.sources = sources
    }

    // MARK: Mappings and lists

    /// The entries of a mapping; unknown keys are errors with a did-you-mean hint. nil if `node` is no mapping.
    func section(_ node: YAMLNode, _ name: String, keys allowedKeys: [String]) -> Section? {
        guard let entries = mapping(node, name) else { return nil }
        var known: [Section.Entry] = []
        for entry in entries {
            if allowedKeys.contains(entry.key) {
                known.append(entry)
            } else {
                log.error("unknown key '\(entry.key)' in \(name)\(Suggestion.hint(for: entry.key, among: allowedKeys))", at: entry.keyLocation)
            }
        }
        return Section(location: node.location, entries: known)
    }

    /// The entries of a mapping with free-form keys (header names, stack names, status codes).
    func mapping(_ node: YAMLNode, _ name: String) -> [Section.Entry]? {
        guard case .map(let pairs) = node.kind else {
            if node.isNull { return [] }
            log.error("expected a mapping for \(name), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return pairs.compactMap { pair in
            guard let key = pair.key.text else {
                log.error("expected a key in \(name), got \(pair.key.shapeDescription)", at: pair.key.location)
                return nil
            }
            return Section.Entry(key: key, keyLocation: pair.key.location, value: pair.value)
        }
    }

    /// The items of a list; a single scalar counts as a one-item list when `allowSingle` is set.
    func list(_ node: YAMLNode, _ what: String, allowSingle: Bool = false) -> [YAMLNode]? {
        switch node.kind {
        case .list(let items): return items
        case .scalar where allowSingle && !node.isNull: return [node]
        default:
            log.error("expected \(what), got \(node.shapeDescription)", at: node.location)
            return nil
        }
    }

    /// A list of strings (or one string), e.g. `expected a list of host names, got a mapping`.
    func stringList(_ node: YAMLNode, _ what: String) -> [(text: String, location: SourceLocation)]? {
        guard let items = list(node, what, allowSingle: true) else { return nil }
        var strings: [(text: String, location: SourceLocation)] = []
        var valid = true
        for item in items {
            if let text = item.text, !item.isNull {
                strings.append((text, item.location))
            } else {
                log.error("expected \(what), got \(item.shapeDescription) as an item", at: item.location)
                valid = false
            }
        }
        return valid ? strings : nil
    }

    /// Reports the second (in file order) of `keys` present, when more than one is.
    func requireAtMostOne(of keys: [String], in section: Section, _ name: String) {
        let present = section.entries.filter { keys.contains($0.key) }
        guard present.count > 1 else { return }
        log.error("\(name) takes only one of \(keys.map { "'\($0)'" }.joined(separator: ", ")), got '\(present[0].key)' and '\(present[1].key)'", at: present[1].keyLocation)
    }

    /// Reports a section that has none of `keys` (e.g. a websocket with no mode).
    func requireOne(of keys: [String], in section: Section, _ name: String) {
        requireAtMostOne(of: keys, in: section, name)
        if keys.allSatisfy({ section[$0] == nil }) {
            log.error("\(name) needs one of: \(keys.joined(separator: ", "))", at: section.location)
        }
    }

    /// Reports a missing key; returns the value when present.
    func required(_ key: String, in section: Section, _ name: String) -> YAMLNode? {
        if let value = section[key] { return value }
        log.error("missing required key '\(key)' in \(name)", at: section.location)
        return nil
    }

    // MARK: Scalars

    func string(_ node: YAMLNode, _ what: String = "a string") -> String? {
        guard let text = node.text, !node.isNull else {
            log.error("expected \(what), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return text
    }

    /// A scalar that `parse` accepts, or an error saying what was expected and what was found.
    private func scalar<T>(_ node: YAMLNode, expected: String, _ parse: (String) -> T?) -> T? {
        guard let text = node.text, let value = parse(text) else {
            log.error("expected \(expected), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return value
    }

    func bool(_ node: YAMLNode) -> Bool? {
        scalar(node, expected: "true or false", CoreSchema.bool)
    }

    func integer(_ node: YAMLNode, _ what: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = node.text, let value = CoreSchema.int(text), range.contains(value) else {
            let bounds = range.upperBound == .max ? "at least \(range.lowerBound)" : "\(range.lowerBound)–\(range.upperBound)"
            log.error("expected \(what) (\(bounds)), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return value
    }

    /// An integer, or `auto` (nil inside the result).
    func integerOrAuto(_ node: YAMLNode, _ what: String) -> Int?? {
        if node.text == "auto" { return .some(nil) }
        guard let text = node.text, let value = CoreSchema.int(text), value >= 1 else {
            log.error("expected \(what) (at least 1) or 'auto', got \(node.shapeDescription)", at: node.location)
            return nil
        }
        return .some(value)
    }

    /// Longest duration the file may give: every later stage counts time in 64-bit nanoseconds,
    /// which end near 292 years; a year is already more than any timeout or interval needs.
    static let longestDuration: Double = 365 * 24 * 3600

    func duration(_ node: YAMLNode) -> Double? {
        guard let seconds = scalar(node, expected: "a duration like 10s", ConfigUnits.parseDuration) else { return nil }
        guard seconds <= Self.longestDuration else {
            log.error("duration \(node.shapeDescription) is too long (at most 365 days)", at: node.location)
            return nil
        }
        return seconds
    }

    func size(_ node: YAMLNode) -> Int? {
        scalar(node, expected: "a size like 16KiB", ConfigUnits.parseSize)
    }

    /// One of `options`, e.g. `invalid value 'insde' for follow_symlinks (did you mean 'inside'?)`.
    func choice(_ node: YAMLNode, _ name: String, options: [String]) -> String? {
        guard let text = node.text, !node.isNull else {
            log.error("expected \(name) (one of: \(options.joined(separator: ", "))), got \(node.shapeDescription)", at: node.location)
            return nil
        }
        if options.contains(text) { return text }
        let hint = Suggestion.closest(to: text, among: options).map { "did you mean '\($0)'?" }
            ?? "expected one of: \(options.joined(separator: ", "))"
        log.error("invalid value '\(text)' for \(name) (\(hint))", at: node.location)
        return nil
    }

    func choice<Value: RawRepresentable>(_ node: YAMLNode, _ name: String, among cases: [Value]) -> Value? where Value.RawValue == String {
        choice(node, name, options: cases.map(\.rawValue)).flatMap(Value.init(rawValue:))
    }

    /// An HTTP status code within `range`.
    func status(_ node: YAMLNode, in range: ClosedRange<Int>) -> Int? {
        guard let text = node.text, let code = CoreSchema.int(text), range.contains(code) else {
            log.error("invalid status code \(node.shapeDescription) (expected \(range.lowerBound)–\(range.upperBound))", at: node.location)
            return nil
        }
        return code
    }

    /// A file-system path, made absolute against the directory of the file that names it.
    func path(_ node: YAMLNode) -> String? {
        string(node, "a path").map { Self.resolve($0, relativeTo: node.location.file) }
    }

    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.utf8.first == UInt8(ascii: "/") { return absolutePath(path) }
        let fileBytes = absolutePath(file).utf8
        let directory = fileBytes.lastIndex(of: UInt8(ascii: "/")).map { fileBytes[..<$0] } ?? fileBytes[...]
        return absolutePath(String(Substring(directory)) + "/" + path)
    }

    /// `path` made absolute against the working directory, its `.` and `..` segments and repeated
    /// slashes removed — what `URL.standardized` does (symbolic links are not followed), on the
    /// string's bytes: through `URL` it was a fifth of `check`'s time on 10,000 `static` routes, and
    /// splitting it as `Character`s a sixth (docs/performance.md, *Round five*).
    static func absolutePath(_ path: String) -> String {
        let full = path.utf8.first == UInt8(ascii: "/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let dot = UInt8(ascii: "."), slash = UInt8(ascii: "/")
        var segments: [Substring.UTF8View] = []
        for segment in full.utf8.split(separator: slash) {
            if segment.count == 1 && segment.first == dot { continue }
            if segment.count == 2 && segment.allSatisfy({ $0 == dot }) {
                _ = segments.popLast()
                continue
            }
            segments.append(segment)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(full.utf8.count)
        for segment in segments {
            bytes.append(slash)
            bytes.append(contentsOf: segment)
        }
        return bytes.isEmpty ? "/" : String(decoding: bytes, as: UTF8.self)
    }
}

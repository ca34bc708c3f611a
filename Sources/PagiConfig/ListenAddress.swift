/// Listen-address syntax for callers outside the loader (the CLI's `--listen`), so the command line
/// accepts exactly what the file accepts.
public enum ListenAddress {
    public static func parse(_ text: String) -> ListenConfig.Address? {
        try? NetworkSyntax.listenAddress(text).get()
    }
}

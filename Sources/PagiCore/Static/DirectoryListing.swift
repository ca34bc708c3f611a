import PagiConfig

/// The body of a directory listing: HTML for browsers, JSON for `Accept: application/json`.
enum DirectoryListing {
    /// Directories first, then by name.
    static func sorted(_ entries: [DirectoryEntry]) -> [DirectoryEntry] {
        entries.sorted { a, b in
            a.isDirectory != b.isDirectory ? a.isDirectory : a.name < b.name
        }
    }

    /// `[{"name": ..., "type": "file"|"directory", "size": bytes|null, "modified": RFC 3339}]`.
    static func json(_ entries: [DirectoryEntry]) -> String {
        let objects = sorted(entries).map { entry in
            "{\"name\":" + TextEscaping.jsonString(entry.name)
                + ",\"type\":\"" + (entry.isDirectory ? "directory" : "file")
                + "\",\"size\":" + (entry.isDirectory ? "null" : String(entry.size))
                + ",\"modified\":\"" + HTTPDate.formatISO8601(epochSeconds: entry.modifiedSeconds) + "\"}"
        }
        return "[" + objects.joined(separator: ",") + "]\n"
    }

    /// A table with sizes in KiB/MiB/GiB (exact bytes in a tooltip), dates as `YYYY-MM-DD hh:mm`
    /// UTC (the HTTP date in a tooltip), and columns sorted by a click on their heading (a few
    /// lines of script; without it the listing stays sorted by name, directories first).
    /// `urlPath` is the decoded request path of the directory (shown as the title).
    static func html(_ entries: [DirectoryEntry], urlPath: String) -> String {
        let title = "Index of " + TextEscaping.html(urlPath)
        var html = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title)</title>
            <style>\(style)</style></head>
            <body><h1>\(title)</h1>
            <table>
            <thead><tr><th><button data-key="name">Name</button></th><th class="size"><button data-key="size">Size</button></th><th><button data-key="modified">Modified</button></th></tr></thead>
            <tbody>

            """
        if urlPath != "/" {
            html += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n"
        }
        var (directories, files, bytes) = (0, 0, 0)
        for entry in sorted(entries) {
            let name = entry.isDirectory ? entry.name + "/" : entry.name
            let href = TextEscaping.html(TextEscaping.percentEncodedPath(name))
            let size = entry.isDirectory ? "—" : humanSize(entry.size)
            let exactSize = entry.isDirectory ? "" : " title=\"\(entry.size) bytes\""
            let iso = HTTPDate.formatISO8601(epochSeconds: entry.modifiedSeconds)
            let shown = iso.prefix(10) + " " + iso.dropFirst(11).prefix(5)
            if entry.isDirectory { directories += 1 } else { (files, bytes) = (files + 1, bytes + entry.size) }
            html += "<tr data-dir=\"\(entry.isDirectory ? 1 : 0)\" data-name=\"\(TextEscaping.html(entry.name))\" "
                + "data-size=\"\(entry.isDirectory ? -1 : entry.size)\" data-modified=\"\(entry.modifiedSeconds)\">"
                + "<td><a href=\"\(href)\">\(TextEscaping.html(name))</a></td><td class=\"size\"\(exactSize)>\(size)</td>"
                + "<td><time datetime=\"\(iso)\" title=\"\(HTTPDate.format(epochSeconds: entry.modifiedSeconds))\">\(shown)</time></td></tr>\n"
        }
        html += "</tbody>\n</table>\n<p class=\"summary\">\(directories) director\(directories == 1 ? "y" : "ies"), "
            + "\(files) file\(files == 1 ? "" : "s"), \(humanSize(bytes))</p>\n"
        return html + "<script>\(sortScript)</script>\n</body></html>\n"
    }

    /// `512 B`, `1.5 KiB`, `12 MiB` (one decimal below 10).
    static func humanSize(_ bytes: Int) -> String {
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes)
        var unit = 0
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        repeat {
            value /= 1024
            unit += 1
        } while value >= 1024 && unit < units.count
        let rounded = value < 10 ? (value * 10).rounded() / 10 : value.rounded()
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return text + " " + units[unit - 1]
    }

    private static let style = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.3em;font-weight:600}"
        + "table{border-collapse:collapse;min-width:40em}th,td{padding:.25em 1.5em .25em 0;text-align:left}"
        + "th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer}"
        + "th button[data-order=asc]::after{content:' ▲'}th button[data-order=desc]::after{content:' ▼'}"
        + "tbody tr:hover{background:#f3f5f8}td.size,th.size{text-align:right;font-variant-numeric:tabular-nums}"
        + "a{text-decoration:none;color:#0550ae}a:hover{text-decoration:underline}.summary{color:#666;font-size:.9em}"

    /// Sorts the rows by the clicked column, directories first; a second click reverses.
    private static let sortScript = """
        document.querySelectorAll('th button').forEach(function (button) { button.addEventListener('click', function () {
          var key = button.dataset.key, body = document.querySelector('tbody'), ascending = button.dataset.order !== 'asc';
          document.querySelectorAll('th button').forEach(function (other) { delete other.dataset.order; });
          button.dataset.order = ascending ? 'asc' : 'desc';
          Array.prototype.slice.call(body.querySelectorAll('tr[data-name]')).sort(function (a, b) {
            var first = b.dataset.dir - a.dataset.dir; if (first) return first;
            var x = a.dataset[key], y = b.dataset[key], order = key === 'name' ? x.localeCompare(y) : x - y;
            return ascending ? order : -order;
          }).forEach(function (row) { body.appendChild(row); });
        }); });
        """
}

import PagiConfig
import PagiCore
@testable import PagiRespond
import XCTest

/// Templates that are only text and `{{name}}` references are rendered without swift-mustache;
/// their output must be exactly swift-mustache's, for every kind of value a request can bring.
final class TextTemplateTests: XCTestCase {
    private let origin = TemplateOrigin.config(handler: SourceLocation(file: "config.yaml", line: 1, column: 1))

    private func context() -> TemplateContext {
        var request = Request(method: "POST", target: "/users/42?name=Ad%C3%A1+%3Cb%3E&tag=x", path: "/users/42",
                              query: "name=Ad%C3%A1+%3Cb%3E&tag=x",
                              headers: ["User-Agent": "curl/8 \"quoted\" <&>", "X-Two": "a", "x-two": "b"],
                              host: "api.example", clientAddress: "192.0.2.7",
                              body: Array(#"{"a": {"b": [1, 2]}, "s": "text"}"#.utf8))
        request.params = ["id": "42", "slug": "{{not a tag}}"]
        return TemplateContext(request)
    }

    func testReferenceOnlyTemplatesRenderExactlyAsMustacheDoes() throws {
        let templates = [
            "User {{path.id}}", "{{ path.id }}-{{path.slug}}", "{{missing}}|{{path.missing}}|{{missing.deeper}}",
            "{{query.name}} & {{query.tag}}", "{{headers.user-agent}} / {{headers.x-two}}", "{{method}} {{uri}} {{host}}",
            "{{client_ip}}", "{{body}}", "no tags at all but }} and { braces", "{{path.id}}{{path.id}}",
            "line one\n{{path.id}}\nline three", "{{path.id}}}", "{{\tpath.id\t}}", "ends with a brace {", "{ {{path.id}} }",
        ]
        for text in templates {
            let template = try TextTemplate(text, escaping: .none, origin: origin)
            XCTAssertTrue(template.rendersReferencesDirectly || !text.contains("{{"), text)
            XCTAssertEqual(template.render(context()), template.renderedByMustache(context()), text)
            // The direct path really renders (a nil would silently fall back to swift-mustache).
            XCTAssertEqual(References(text)?.render(context()), template.renderedByMustache(context()), text)
        }
    }

    func testValuesThatAreNotTextFallBackToMustache() throws {
        // One context for both renderings: a dictionary value prints in its instance's iteration order,
        // which Swift seeds per instance, so two contexts could print the same map differently.
        let shared = context()
        for text in ["{{path}}", "{{json.a}}", "{{json.s}}", "{{query}}", "{{path.id.deeper}}", "{{method.x}}"] {
            let template = try TextTemplate(text, escaping: .none, origin: origin)
            XCTAssertEqual(template.render(shared), template.renderedByMustache(shared), text)
            XCTAssertNil(References(text)?.render(shared), "\(text) is left to swift-mustache")
        }
    }

    func testWholeMapsRenderAsCompactJSONWithSortedKeys() throws {
        let maps = try TextTemplate("{{path}} {{query}} {{headers}}", escaping: .none, origin: origin)
        XCTAssertEqual(maps.render(context()), #"{"id":"42","slug":"{{not a tag}}"} {"name":"Adá <b>","tag":"x"} "#
                       + #"{"user-agent":"curl/8 \"quoted\" <&>","x-two":"a, b"}"#)
        let bare = TemplateContext(Request(method: "GET", target: "/", path: "/", query: nil, headers: [:], host: "h"))
        XCTAssertEqual(try TextTemplate("{{path}}|{{query}}", escaping: .none, origin: origin).render(bare), "{}|{}")
        let sorted = try TextTemplate("{{#sorted(query)}}{{key}}={{value}};{{/sorted(query)}}", escaping: .none, origin: origin)
        XCTAssertEqual(sorted.render(context()), "name=Adá <b>;tag=x;", "swift-mustache's map transforms still apply")
    }

    func testOtherTagsAndHTMLEscapingStayWithMustache() throws {
        for text in ["{{#path}}{{id}}{{/path}}", "{{{path.id}}}", "{{&path.id}}", "{{! note }}{{path.id}}", "{{.}}"] {
            XCTAssertFalse(try TextTemplate(text, escaping: .none, origin: origin).rendersReferencesDirectly, text)
        }
        let html = try TextTemplate("<p>{{headers.user-agent}}</p>", escaping: .html, origin: origin)
        XCTAssertFalse(html.rendersReferencesDirectly)
        XCTAssertTrue(html.render(context()).contains("&lt;&amp;&gt;"), "HTML responses keep Mustache's escaping")
    }
}

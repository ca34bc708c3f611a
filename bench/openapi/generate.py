#!/usr/bin/env python3
"""Writes a large OpenAPI 3.0 document shaped like the big public API descriptions (hundreds of
operations over shared components: `$ref`s to parameters, schemas and responses, `allOf` paging
envelopes, a recursive schema, examples on most responses). Deterministic: the same arguments give
the same file.

usage: bench/openapi/generate.py OUT.yaml [--resources 100] [--json] [--acyclic]
  100 resources → 800 operations, about 3 MB of YAML.
"""
import argparse
import json
import pathlib

import yaml


# Real descriptions are prose: most of a large document's bytes.
LOREM = ("Lists the items the authenticated user can see, newest first. Pagination follows the Link header; "
         "see the guide on pagination for details. Fine-grained tokens need read access to metadata. ") * 4


def operation_text(index: int, verb: str) -> dict:
    return {"summary": f"{verb} resource {index}", "description": f"{verb} resource {index}.\n\n" + LOREM * 3,
            "externalDocs": {"description": "API method documentation", "url": f"https://docs.example.com/rest/r{index}#{verb}"}}


def resource_schema(index: int) -> dict:
    properties = {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "example": index + 1},
        "node_id": {"type": "string", "example": f"MDQ6VXNlcj{index}"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "full_name": {"type": "string", "nullable": True},
        "description": {"type": "string", "nullable": True, "maxLength": 2000},
        "url": {"type": "string", "format": "uri"},
        "html_url": {"type": "string", "format": "uri"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "visibility": {"type": "string", "enum": ["public", "private", "internal"]},
        "owner": {"$ref": "#/components/schemas/SimpleUser"},
        "labels": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}, "uniqueItems": True},
        "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "parent": {"$ref": "#/components/schemas/TreeNode"},
    }
    for extra in range(12):
        properties[f"field_{extra}"] = ({"type": "string", "pattern": "^[a-z0-9-]+$"} if extra % 3 == 0 else
                                        {"type": "integer", "format": "int32", "maximum": 1000} if extra % 3 == 1 else
                                        {"type": "boolean", "default": False})
    for key, value in properties.items():
        value.setdefault("description", f"The {key.replace('_', ' ')} of resource {index}. " + LOREM[: 60 + (len(key) * 7) % 90])
    return {"type": "object", "required": ["id", "node_id", "name", "url", "owner"], "properties": properties}


def document(resources: int, recursive: bool = True) -> dict:
    schemas = {
        "SimpleUser": {"type": "object", "required": ["login", "id"], "properties": {
            "login": {"type": "string", "example": "octocat"}, "id": {"type": "integer", "format": "int64"},
            "avatar_url": {"type": "string", "format": "uri"}, "email": {"type": "string", "format": "email", "nullable": True},
            "site_admin": {"type": "boolean"}}},
        "Label": {"type": "object", "required": ["name", "color"], "properties": {
            "id": {"type": "integer", "format": "int64"}, "name": {"type": "string"},
            "color": {"type": "string", "pattern": "^[0-9a-f]{6}$", "example": "f29513"}}},
        "TreeNode": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "children": {"type": "array", "items":
                {"$ref": "#/components/schemas/TreeNode"} if recursive else {"type": "object"}}}},
        "Page": {"type": "object", "required": ["total_count", "items"], "properties": {
            "total_count": {"type": "integer", "minimum": 0}, "incomplete_results": {"type": "boolean"}}},
        "Error": {"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"}, "documentation_url": {"type": "string", "format": "uri"}}},
    }
    parameters = {
        "owner": {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}},
        "repo": {"name": "repo", "in": "path", "required": True, "schema": {"type": "string"}},
        "per-page": {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 30}},
        "page": {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
        "since": {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    }
    responses = {
        "not_found": {"description": "Resource not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "validation_failed": {"description": "Validation failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    }
    paths = {}
    for index in range(resources):
        name = f"Resource{index}"
        schemas[name] = resource_schema(index)
        schemas[f"{name}Page"] = {"allOf": [{"$ref": "#/components/schemas/Page"}, {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}}}]}
        schemas[f"{name}Update"] = {"type": "object", "minProperties": 1, "properties": {
            "name": {"type": "string"}, "description": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {
                "text": {"type": "string"}, "format": {"type": "string", "enum": ["markdown", "plain"]}}}]},
            "visibility": {"type": "string", "enum": ["public", "private"]}}}
        base = f"/repos/{{owner}}/{{repo}}/r{index}"
        common = [{"$ref": "#/components/parameters/owner"}, {"$ref": "#/components/parameters/repo"}]
        item_id = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ok = lambda ref, example=None: {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{ref}"}, **({"example": example} if example else {})}}}
        example = {"id": index + 1, "node_id": f"N{index}", "name": f"thing-{index}", "url": f"https://api.example.com/r/{index}",
                   "owner": {"login": "octocat", "id": 1}, "labels": [{"name": "bug", "color": "f29513"}]}
        paths[base] = {
            "parameters": common,
            "get": {**operation_text(index, "list"), "operationId": f"r{index}/list", "tags": [f"group{index % 20}"],
                    "parameters": [{"$ref": "#/components/parameters/per-page"}, {"$ref": "#/components/parameters/page"},
                                   {"$ref": "#/components/parameters/since"}],
                    "responses": {"200": ok(f"{name}Page"), "404": {"$ref": "#/components/responses/not_found"}}},
            "post": {**operation_text(index, "create"), "operationId": f"r{index}/create", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}Update"}}}},
                "responses": {"201": ok(name, example), "422": {"$ref": "#/components/responses/validation_failed"}}},
        }
        paths[f"{base}/{{item_id}}"] = {
            "parameters": common + [item_id],
            "get": {**operation_text(index, "get"), "operationId": f"r{index}/get", "responses": {"200": ok(name, example), "404": {"$ref": "#/components/responses/not_found"}}},
            "patch": {**operation_text(index, "update"), "operationId": f"r{index}/update", "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}Update"}}}},
                "responses": {"200": ok(name), "422": {"$ref": "#/components/responses/validation_failed"}}},
            "put": {**operation_text(index, "replace"), "operationId": f"r{index}/replace", "requestBody": {"content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}, "responses": {"200": ok(name)}},
            "delete": {**operation_text(index, "delete"), "operationId": f"r{index}/delete", "responses": {"204": {"description": "Deleted"}}},
        }
        paths[f"{base}/{{item_id}}/tree"] = {
            "parameters": common + [item_id],
            "get": {**operation_text(index, "tree"), "operationId": f"r{index}/tree", "responses": {"200": ok("TreeNode")}},
            "head": {**operation_text(index, "exists"), "operationId": f"r{index}/exists", "responses": {"204": {"description": "Exists"}}},
        }
    return {"openapi": "3.0.3", "info": {"title": "Generated large API", "version": "1.0"}, "paths": paths,
            "components": {"schemas": schemas, "parameters": parameters, "responses": responses}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--acyclic", action="store_true", help="no recursive schema (for servers that cannot load one)")
    args = parser.parse_args()
    doc = document(args.resources, recursive=not args.acyclic)
    text = json.dumps(doc, indent=2) if args.json else yaml.safe_dump(doc, sort_keys=False, width=120)
    pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

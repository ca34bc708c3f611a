/// Fixtures shared by tests of several targets.
public enum OpenAPIFixtures {
    /// An OpenAPI 3.0 description of a small users API: documented examples (one and several),
    /// schemas with `$ref`, a required query parameter, a request body, and a `text/plain` answer.
    /// Used by the `openapi` stub tests, the metrics tests (route labels of an OpenAPI mount) and
    /// the CLI tests (`pagi-serve routes`).
    public static let usersSpec = """
        openapi: 3.0.3
        info: {title: Users, version: "1.0"}
        paths:
          /users:
            get:
              operationId: listUsers
              parameters:
                - {name: limit, in: query, required: true, schema: {type: integer, minimum: 1, maximum: 100}}
              responses:
                "200":
                  description: some users
                  content:
                    application/json:
                      example: [{id: 1, name: Ada}]
            post:
              operationId: createUser
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/NewUser"}
              responses:
                "201":
                  description: created
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/User"}
                "422": {description: refused}
          /users/{id}:
            parameters:
              - {name: id, in: path, required: true, schema: {type: integer}}
            get:
              operationId: getUser
              responses:
                "200":
                  description: one user
                  content:
                    application/json:
                      examples:
                        ada: {value: {id: 1, name: Ada}}
                        grace: {value: {id: 2, name: Grace}}
                "404":
                  description: no such user
                  content:
                    application/problem+json:
                      examples:
                        gone: {value: {title: gone, status: 404}}
          /users/me:
            get:
              operationId: currentUser
              responses:
                "200":
                  description: the caller
                  content:
                    text/plain:
                      example: it is you
        components:
          schemas:
            NewUser:
              type: object
              required: [id, name, email]
              properties:
                id: {type: integer, readOnly: true}
                name: {type: string, minLength: 1}
                email: {type: string, format: email}
                age: {type: integer, minimum: 0}
            User:
              type: object
              required: [id, name]
              properties:
                id: {type: integer, minimum: 1}
                name: {type: string}
                email: {type: string, format: email}
                role: {type: string, enum: [admin, member]}
                tags: {type: array, items: {type: string}}
                created: {type: string, format: date-time}
        """
}

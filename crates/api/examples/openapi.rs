//! Prints the OpenAPI document: `cargo run -p sked-api --example openapi > docs/openapi.json`.

fn main() {
    print!("{}", sked_api::openapi::openapi_json());
}

//! Prints the schedule-request JSON Schema:
//! `cargo run -p sked-api --example schema > docs/schedule-request.schema.json`.

fn main() {
    print!("{}", sked_api::request::schema_json());
}

fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    match parse_dockerfile::parse(&text) {
        Ok(d) => println!("{:#?}", d),
        Err(e) => println!("ERR {e} line {} col {}", e.line(), e.column()),
    }
}

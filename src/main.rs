fn main() {
    print!("{}", cvm_operator::api::crd_yaml());
}

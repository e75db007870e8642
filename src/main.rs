fn main() {
    println!("convtrain");
}

// Debian's libyuv-dev ships libyuv.so without a pkg-config file.
fn main() {
    println!("cargo:rustc-link-lib=dylib=yuv");
}

#!/bin/sh
# Builds the ESP32-C3 firmware (riscv32imc-unknown-none-elf, release, locked)
# and prints its size. Run from anywhere; needs rustup and crates.io access
# (or a warm cargo cache).
set -eu
cd "$(dirname "$0")"

rustup target add riscv32imc-unknown-none-elf
start=$(date +%s)
cargo build --release --locked
end=$(date +%s)
elf=target/riscv32imc-unknown-none-elf/release/hearth-esp32c3-sensor
echo "firmware build: $((end - start)) s"

echo "firmware size ($elf):"
if command -v llvm-size >/dev/null 2>&1; then
    llvm-size "$elf"
elif command -v size >/dev/null 2>&1; then
    size "$elf"
else
    wc -c "$elf"
    if command -v readelf >/dev/null 2>&1; then
        readelf -S -W "$elf"
    fi
fi
# What goes to flash (code and read-only data) vs RAM: the ELF's *_dummy
# sections and .stack only reserve address space.

#!/usr/bin/env python3
"""Builds the Debian package from an already-built binary and the
[package.metadata.deb] table of Cargo.toml, with dpkg-deb (no cargo-deb to
compile first): the assets with their modes, the conffiles, the maintainer
scripts, md5sums, and the shared-library dependencies from dpkg-shlibdeps
(the `$auto` of `depends`). Files are owned by root in the archive.

    scripts/build-deb.py BINARY OUT.deb [--fast]

--fast compresses with gzip -1 instead of xz (the package check's debug
build: faster to build, never shipped). BINARY replaces `target/release/portcullis` in the asset list, so a debug
build can be packaged for the package check without a release build.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

RELEASE_BINARY = "target/release/portcullis"
# The Debian revision of every package built from one upstream version.
REVISION = "1"


def metadata():
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--locked"],
        check=True, capture_output=True, text=True).stdout
    package = next(p for p in json.loads(out)["packages"] if p["name"] == "portcullis")
    return package, package["metadata"]["deb"]


def shlib_depends(binary, work):
    """`libc6 (>= 2.34), ...` for the binary, as dpkg-shlibdeps computes it."""
    os.makedirs(os.path.join(work, "debian"), exist_ok=True)
    with open(os.path.join(work, "debian", "control"), "w") as f:
        f.write("Source: portcullis\n\nPackage: portcullis\nArchitecture: any\n")
    out = subprocess.run(["dpkg-shlibdeps", "-O", os.path.abspath(binary)], cwd=work,
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("shlibs:Depends="):
            return line.split("=", 1)[1]
    return ""


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--fast"]):
        sys.exit(__doc__)
    binary, out_deb = sys.argv[1], sys.argv[2]
    compression = ["-Zgzip", "-z1"] if sys.argv[3:] == ["--fast"] else ["-Zxz"]
    package, deb = metadata()
    work = tempfile.mkdtemp(prefix="portcullis-deb.")
    try:
        root = os.path.join(work, "root")
        control_dir = os.path.join(root, "DEBIAN")
        os.makedirs(control_dir)
        md5sums = []
        for source, target, mode in deb["assets"]:
            source = binary if source == RELEASE_BINARY else source
            sources = sorted(glob.glob(source))
            if not sources:
                sys.exit(f"build-deb: asset {source} not found")
            for path in sources:
                dest = target + os.path.basename(path) if target.endswith("/") else target
                full = os.path.join(root, dest)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                shutil.copyfile(path, full)
                os.chmod(full, int(mode, 8))
                with open(full, "rb") as f:
                    md5sums.append(f"{hashlib.md5(f.read()).hexdigest()}  {dest}\n")
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        scripts = deb.get("maintainer-scripts")
        for name in ("preinst", "postinst", "prerm", "postrm"):
            path = os.path.join(scripts, name) if scripts else None
            if path and os.path.exists(path):
                shutil.copyfile(path, os.path.join(control_dir, name))
                os.chmod(os.path.join(control_dir, name), 0o755)
        depends = deb.get("depends", "$auto").replace("$auto", shlib_depends(binary, work))
        depends = ", ".join(d.strip() for d in depends.split(",") if d.strip())
        arch = subprocess.run(["dpkg", "--print-architecture"], check=True,
                              capture_output=True, text=True).stdout.strip()
        size_kib = sum(os.path.getsize(os.path.join(d, f))
                       for d, _, files in os.walk(root) for f in files) // 1024
        description = package.get("description", "").strip()
        extended = "\n".join(" " + (line or ".")
                             for line in deb.get("extended-description", "").strip().splitlines())
        with open(os.path.join(control_dir, "control"), "w") as f:
            f.write(f"Package: {package['name']}\nVersion: {package['version']}-{REVISION}\n"
                    f"Architecture: {arch}\nMaintainer: {deb['maintainer']}\n"
                    f"Installed-Size: {size_kib}\nDepends: {depends}\n"
                    f"Section: {deb.get('section', 'misc')}\n"
                    f"Priority: {deb.get('priority', 'optional')}\n"
                    f"Description: {description}\n{extended}\n")
        with open(os.path.join(control_dir, "conffiles"), "w") as f:
            f.writelines(c + "\n" for c in deb.get("conf-files", []))
        with open(os.path.join(control_dir, "md5sums"), "w") as f:
            f.writelines(md5sums)
        os.makedirs(os.path.dirname(os.path.abspath(out_deb)), exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", *compression, "--build", root, out_deb],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(work)
    print(out_deb)


if __name__ == "__main__":
    main()

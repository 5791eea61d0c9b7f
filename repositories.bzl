# SPDX-License-Identifier: BSD-3-Clause
"""poll_deps(): the external repositories poll needs, pinned.

In a consumer's WORKSPACE:

    local_repository(name = "poll", path = "...")   # or http_archive
    load("@poll//:repositories.bzl", "poll_deps")
    poll_deps()

Each repository is declared only if the workspace has not declared one of
that name already (so a consumer may pin its own abseil, at its own risk).

The sources are the ones ./bazelw uses offline: the orig tarballs of
Debian bookworm's source packages (googletest and benchmark are
byte-identical to the upstream release archives; abseil is a git archive
of the upstream 20220623.1 commit), and abseil gets the same security
patch (CVE-2025-0838). On a machine without network access, point Bazel at
a directory holding the tarballs with --distdir: Bazel matches the file
name of a URL and the sha256, and downloads nothing (examples/bazel_consumer).
"""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")

# Debian's archive keeps a source package's orig tarball in its pool as
# long as a release ships it; snapshots keep it for good.
_DEBIAN_POOL = [
    "https://deb.debian.org/debian/pool/main",
    "https://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main",
]

def _debian_urls(path):
    return [base + "/" + path for base in _DEBIAN_POOL]

def poll_deps():
    """Declares abseil, GoogleTest, Google Benchmark, skylib and platforms."""
    maybe(
        http_archive,
        name = "com_google_absl",
        sha256 = "abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe",
        strip_prefix = "abseil-20220623.1",
        urls = _debian_urls("a/abseil/abseil_20220623.1.orig.tar.gz"),
        patches = [Label("//third_party/abseil:CVE-2025-0838.patch")],
        patch_args = ["-p1"],
        # Bazel's built-in patcher rejects this patch; patch(1) applies it.
        patch_tool = "patch",
    )
    maybe(
        http_archive,
        name = "com_google_googletest",
        sha256 = "81964fe578e9bd7c94dfdb09c8e4d6e6759e19967e397dbea48d1c10e45d0df2",
        strip_prefix = "googletest-release-1.12.1",
        urls = _debian_urls("g/googletest/googletest_1.12.1.orig.tar.gz") + [
            "https://github.com/google/googletest/archive/refs/tags/release-1.12.1.tar.gz",
        ],
    )
    maybe(
        http_archive,
        name = "com_github_google_benchmark",
        sha256 = "6430e4092653380d9dc4ccb45a1e2dc9259d581f4866dc0759713126056bc1d7",
        strip_prefix = "benchmark-1.7.1",
        urls = _debian_urls("b/benchmark/benchmark_1.7.1.orig.tar.gz") + [
            "https://github.com/google/benchmark/archive/refs/tags/v1.7.1.tar.gz",
        ],
    )

    # abseil loads @bazel_skylib and uses @platforms//cpu:wasm32, which
    # older builtin @platforms lack; poll's BUILD files use @platforms//os.
    maybe(
        http_archive,
        name = "bazel_skylib",
        sha256 = "1c531376ac7e5a180e0237938a2536de0c54d93f5c278634818e0efc952dd56c",
        urls = ["https://github.com/bazelbuild/bazel-skylib/releases/download/1.0.3/bazel-skylib-1.0.3.tar.gz"],
    )
    maybe(
        http_archive,
        name = "platforms",
        sha256 = "079945598e4b6cc075846f7fd6a9d0857c33a7afc0de868c2ccb96405225135d",
        urls = ["https://github.com/bazelbuild/platforms/releases/download/0.0.4/platforms-0.0.4.tar.gz"],
    )

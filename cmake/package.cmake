# The Debian package, numalloc_VERSION_amd64.deb: `scripts/package` configures a build with
# CMAKE_INSTALL_PREFIX=/usr (so GNUInstallDirs picks the multiarch library folder) and runs
# cpack. The package holds what `cmake --install` installs; dpkg-shlibdeps fills in Depends.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME numalloc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "NUMA-aware malloc replacement, loaded with LD_PRELOAD")
set(CPACK_PACKAGE_DESCRIPTION
    "numalloc replaces malloc and the rest of the C allocator in any dynamically
linked program, without recompiling it: LD_PRELOAD=libnumapreload.so puts every
allocation on the NUMA node of the CPU the thread runs on (or interleaves it, or
spreads it by weights), bound to that node before the first touch, and reports
where the memory went. The numalloc command runs programs under it and sums a
process's pages per node; numalloc.h offers explicit placement.")
# The package's files are laid out under /usr with DESTDIR, so that the prefix numalloc.pc is
# written with at install time is /usr and not the staging folder.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "numalloc maintainers <numalloc@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file, and the ldconfig trigger that makes LD_PRELOAD=libnumapreload.so resolve.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
include(CPack)

# make install's second half (install(SCRIPT) from CMakeLists.txt), run by
# `cmake --install` with the install-time prefix: the systemd units and the
# sysusers file name the installed binary, and the example option files go to
# SYSCONFDIR/roost unless they are already there (local edits are kept).
# ROOST_SOURCE_DIR and ROOST_BINARY_DIR are set by the install(CODE) before it.
set(prefix "${CMAKE_INSTALL_PREFIX}")
set(BINDIR "${prefix}/bin")
set(DOCDIR "${prefix}/share/doc/roost")
if(prefix STREQUAL "/usr")
  set(SYSCONFDIR "/etc")
else()
  set(SYSCONFDIR "${prefix}/etc")
endif()
set(units "${ROOST_BINARY_DIR}/dist/systemd")
foreach(unit roost-hub.service roost-relay.service roost-host@.service)
  configure_file("${ROOST_SOURCE_DIR}/dist/systemd/${unit}.in" "${units}/${unit}" @ONLY)
  file(INSTALL "${units}/${unit}" DESTINATION "${prefix}/lib/systemd/system"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
file(INSTALL "${ROOST_SOURCE_DIR}/dist/roost.sysusers" DESTINATION "${prefix}/lib/sysusers.d"
     RENAME roost.conf PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
foreach(env hub.env relay.env host.env)
  if(NOT EXISTS "$ENV{DESTDIR}${SYSCONFDIR}/roost/${env}")
    file(INSTALL "${ROOST_SOURCE_DIR}/dist/${env}" DESTINATION "${SYSCONFDIR}/roost"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  else()
    message(STATUS "Kept: $ENV{DESTDIR}${SYSCONFDIR}/roost/${env}")
  endif()
endforeach()

"""The wall. Host side: start and talk to the sandbox (zygote_host, student_process, values), confine it
(modes, bwrap, uid_confinement, private_files, cgroups, limits, cpu_share). inside/ holds exactly the files
mounted into it. Imported by grading/ and the CLI; nothing in inside/ imports the host.
"""

from tmc.cli import main

main()

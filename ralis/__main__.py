from ralis.cli import main

main()

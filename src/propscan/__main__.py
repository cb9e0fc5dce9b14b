from propscan.cli import main

main()

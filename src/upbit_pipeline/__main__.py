from upbit_pipeline.cli import main

main()

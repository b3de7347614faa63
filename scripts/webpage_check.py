"""Drives the page at / in headless Chromium; see scripts/check-webpage.sh."""
import subprocess, sys, tempfile, time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

unclip, shot = sys.argv[1], sys.argv[2] or tempfile.mktemp(suffix=".png")
server = subprocess.Popen([unclip, "serve", "--port", "0", "-q"], stdout=subprocess.PIPE, text=True)
base = server.stdout.readline().split()[-1]
opts = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1100"]:
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    driver.get(base + "/")
    wait = WebDriverWait(driver, 300)
    wait.until(lambda d: d.find_element(By.ID, "model").text.startswith("model "))
    p = driver.find_element(By.ID, "prompt")
    p.clear()
    p.send_keys("a red circle on top of a blue square")
    driver.find_element(By.ID, "go").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid img")) == 4)
    wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) == 256 for i in d.find_elements(By.CSS_SELECTOR, "#grid img")))
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("done in"), status
    assert driver.find_element(By.ID, "preview").get_attribute("src").startswith("data:image/png;base64,"), "no live preview arrived"
    print("page: generated 4 images with a live preview:", status)
    driver.find_element(By.ID, "edit").click()
    paint = driver.find_element(By.ID, "paint")
    ActionChains(driver).move_to_element_with_offset(paint, -120, 60).click_and_hold() \
        .move_by_offset(80, 0).move_by_offset(80, 0).move_by_offset(80, 0).release().perform()
    painted = driver.execute_script("const c=document.getElementById('paint');const d=c.getContext('2d').getImageData(0,0,c.width,c.height).data;let n=0;for(let i=3;i<d.length;i+=4)if(d[i])n++;return n")
    assert painted > 100, f"the brush painted {painted} pixels"
    driver.find_element(By.ID, "apply").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done in") and d.find_element(By.ID, "status").text != status)
    err = driver.find_element(By.ID, "error").text
    assert not err, err
    print(f"page: painted a mask ({painted} pixels) and applied the edit:", driver.find_element(By.ID, "status").text)
    driver.save_screenshot(shot)
    print("screenshot:", shot)
finally:
    driver.quit()
    server.terminate()
    server.wait(timeout=60)
